fn main() {
    println!("perfledger {}", env!("CARGO_PKG_VERSION"));
}
