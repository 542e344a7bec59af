//! Plausibility limits on numbers read from files and the command line, in one leaf module (no
//! dependencies inside the crate, so every reader can use it). A value past a limit is a typo or a
//! hostile file, and would overflow the arithmetic done with it; each reader refuses it naming the
//! field (SECURITY.md, "numbers").

/// Largest accepted dimension (2^20 for most, 2^21 for `kv_len`): larger values are typos.
pub const MAX_DIM: i64 = 1 << 20;
pub const MAX_KV_LEN: i64 = 1 << 21;
/// Longest accepted suite or command-line budget (case or run), seconds: a week.
pub const MAX_BUDGET_S: f64 = 7.0 * 86400.0;
/// The longest time a row's sample or statistic may hold (10⁶ s, 11.6 days: a row is capped at
/// minutes; a larger value is a corrupt or hostile file, and would overflow rates derived from it).
pub const MAX_TIME_S: f64 = 1e6;

/// A number from a file for a message: plain where short, in exponent form where its digits
/// would run on (1e308 printed plainly is 309 characters).
pub fn show_number(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-4..1e7).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}
