//! The fleet scripts (`scripts/fleet/`): the SkyPilot task YAML's keys are the ones SkyPilot
//! accepted when `scripts/fleet/validate.sh` last ran (its committed output), every shell script
//! under `scripts/` parses, `launch.sh --dry-run` prints the right `sky` commands without `sky`,
//! bad INSTANCES lines are refused naming file and line, a launch with a stand-in `sky` tears every
//! cluster down (also after a failure), and the Kubernetes and Slurm renderings are what they say.
//! No network, no cloud: `sky`, `rsync` and the report binary are stand-ins where they run at all.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn fleet(rel: &str) -> PathBuf {
    root().join("scripts/fleet").join(rel)
}

/// `PATH` without any directory holding a `sky` executable, so the scripts cannot reach one.
fn path_without_sky() -> String {
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    let dirs: Vec<&str> = path
        .split(':')
        .filter(|d| !d.is_empty() && !Path::new(d).join("sky").exists())
        .collect();
    dirs.join(":")
}

fn bash(args: &[&str], path: &str, cwd: &Path) -> Output {
    Command::new("bash")
        .args(args)
        .current_dir(cwd)
        .env("PATH", path)
        .env_remove("PERFLEDGER_BIN")
        .env_remove("PERFLEDGER_RUN_ARGS")
        .env_remove("SKY")
        .output()
        .expect("bash runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every mapping key as a dotted path, nested mappings too (lists are leaves): the same rule as
/// `key_paths` in scripts/fleet/validate.sh.
fn key_paths(node: &Yaml, prefix: &str, out: &mut Vec<String>) {
    if let Yaml::Hash(h) = node {
        for (k, v) in h {
            let k = match k {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(i) => i.to_string(),
                Yaml::Boolean(b) => if *b { "True" } else { "False" }.to_string(),
                other => panic!("unexpected key {other:?}"),
            };
            let p = format!("{prefix}{k}");
            out.push(p.clone());
            key_paths(v, &format!("{p}."), out);
        }
    }
}

#[test]
fn task_yaml_keys_are_the_ones_skypilot_accepted() {
    let yaml_path = fleet("perfledger-task.yaml");
    let docs = YamlLoader::load_from_str(&fs::read_to_string(&yaml_path).unwrap())
        .expect("perfledger-task.yaml is YAML");
    assert_eq!(docs.len(), 1);
    let mut keys = Vec::new();
    key_paths(&docs[0], "", &mut keys);
    keys.sort();
    let n = keys.len();
    keys.dedup();
    assert_eq!(n, keys.len(), "duplicate keys in perfledger-task.yaml");

    let out = fs::read_to_string(fleet("validate.out")).expect("scripts/fleet/validate.out");
    let block: Vec<String> = out
        .lines()
        .skip_while(|l| *l != "# accepted-keys begin")
        .skip(1)
        .take_while(|l| *l != "# accepted-keys end")
        .map(str::to_string)
        .collect();
    assert!(
        out.lines().any(|l| l == "# accepted-keys end"),
        "validate.out has no accepted-keys block"
    );
    assert_eq!(
        keys, block,
        "scripts/fleet/perfledger-task.yaml changed since scripts/fleet/validate.sh ran: run it again \
         and commit scripts/fleet/validate.out"
    );
    assert!(out
        .lines()
        .any(|l| l.starts_with("OK scripts/fleet/perfledger-task.yaml")));
    assert!(
        out.lines()
            .any(|l| l.starts_with("OK rejected (expected failure)")),
        "validate.out does not show a broken copy rejected"
    );
    assert_eq!(out.lines().last(), Some("# all checks passed"));
    // The task runs task.sh and keeps a forgotten node from billing.
    let doc = &docs[0];
    assert!(doc["run"]
        .as_str()
        .unwrap()
        .contains("bash scripts/fleet/task.sh"));
    assert_eq!(doc["resources"]["autostop"]["down"].as_bool(), Some(true));
    assert_eq!(doc["workdir"].as_str(), Some("."));
}

fn shell_scripts(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            shell_scripts(&p, out);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("sh" | "sbatch")
        ) {
            out.push(p);
        }
    }
}

#[test]
fn every_shell_script_under_scripts_parses() {
    let mut scripts = Vec::new();
    shell_scripts(&root().join("scripts"), &mut scripts);
    scripts.sort();
    for must in [
        "launch.sh",
        "validate.sh",
        "instances.sh",
        "vulkan-icd.sh",
        "slurm/perfledger.sbatch",
        "slurm/submit.sh",
        "k8s/render.sh",
    ] {
        assert!(scripts.contains(&fleet(must)), "{must} not found");
    }
    for s in &scripts {
        let o = Command::new("bash").arg("-n").arg(s).output().unwrap();
        assert!(
            o.status.success(),
            "bash -n {}: {}",
            s.display(),
            text(&o.stderr)
        );
    }
}

/// The example's machines: (cloud, instance, region, pricing model, price).
fn example_lines() -> Vec<[String; 5]> {
    fs::read_to_string(fleet("instances.example.txt"))
        .unwrap()
        .lines()
        .map(|l| l.split('#').next().unwrap())
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!((4..=5).contains(&f.len()), "{l}");
            [
                f[0].into(),
                f[1].into(),
                f[2].into(),
                f[3].into(),
                f.get(4).copied().unwrap_or("").into(),
            ]
        })
        .collect()
}

fn cluster_of(words: &[&str]) -> String {
    let i = words.iter().position(|w| *w == "-c").expect("-c CLUSTER");
    words[i + 1].to_string()
}

#[test]
fn launch_dry_run_prints_one_launch_collect_and_down_per_line_and_one_report() {
    let lines = example_lines();
    assert!((3..=6).contains(&lines.len()));
    assert!(lines.iter().any(|l| l[3] == "spot"));
    assert!(lines.iter().any(|l| !l[4].is_empty()));
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let path = path_without_sky();
    let o = bash(
        &[
            fleet("launch.sh").to_str().unwrap(),
            fleet("instances.example.txt").to_str().unwrap(),
            "--dry-run",
            "--suite",
            "quick",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &path,
        tmp.path(),
    );
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", text(&o.stderr));
    assert!(!out_dir.exists(), "a dry run writes nothing");
    let cmds: Vec<&str> = stdout.lines().collect();
    assert!(cmds.iter().all(|l| l.starts_with("+ ")), "{stdout}");

    let launches: Vec<Vec<&str>> = cmds
        .iter()
        .filter(|l| l.starts_with("+ sky launch "))
        .map(|l| l.split_whitespace().skip(1).collect())
        .collect();
    assert_eq!(launches.len(), lines.len(), "{stdout}");
    let mut clusters = Vec::new();
    for (w, [cloud, inst, region, model, price]) in launches.iter().zip(&lines) {
        let has = |pair: &[&str]| w.windows(pair.len()).any(|x| x == pair);
        assert!(has(&["-y"]));
        assert!(has(&["--infra", &format!("{cloud}/{region}")]), "{w:?}");
        assert!(has(&["--instance-type", inst]), "{w:?}");
        assert_eq!(has(&["--use-spot"]), model == "spot", "{w:?}");
        assert!(has(&["-i", "10", "--down"]), "{w:?}");
        for (k, v) in [
            ("PERFLEDGER_INSTANCE", inst),
            ("PERFLEDGER_PROVIDER", cloud),
            ("PERFLEDGER_REGION", region),
            ("PERFLEDGER_PRICING_MODEL", model),
        ] {
            assert!(has(&["--env", &format!("{k}={v}")]), "{k} in {w:?}");
        }
        assert!(has(&["--env", "PERFLEDGER_SUITE=quick"]), "{w:?}");
        let price_envs: Vec<_> = w
            .iter()
            .filter(|x| x.starts_with("PERFLEDGER_PRICE="))
            .collect();
        if price.is_empty() {
            assert!(price_envs.is_empty(), "{w:?}");
        } else {
            assert_eq!(price_envs, [&format!("PERFLEDGER_PRICE={price}").as_str()]);
        }
        assert_eq!(w.last(), Some(&"scripts/fleet/perfledger-task.yaml"));
        let c = cluster_of(w);
        assert!(c.starts_with("perfledger-"), "{c}");
        assert!(
            c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-'),
            "{c}"
        );
        clusters.push(c);
    }
    let unique: BTreeSet<_> = clusters.iter().collect();
    assert_eq!(unique.len(), clusters.len(), "cluster names collide");

    // One collection and one teardown per cluster, in that order after its launch.
    for c in &clusters {
        let at = |prefix: &str| {
            let v: Vec<usize> = cmds
                .iter()
                .enumerate()
                .filter(|(_, l)| {
                    l.starts_with(prefix) && l.split_whitespace().any(|w| w.contains(c.as_str()))
                })
                .map(|(i, _)| i)
                .collect();
            assert_eq!(v.len(), 1, "{prefix} for {c}: {stdout}");
            v[0]
        };
        let (l, r, d) = (at("+ sky launch "), at("+ rsync "), at("+ sky down "));
        assert!(l < r && r < d, "{c}: launch, collect, down out of order");
        assert_eq!(cmds[d], format!("+ sky down -y {c}"));
        assert!(cmds[r].contains(&format!("{}/{c}/", out_dir.display())));
    }
    assert_eq!(
        cmds.iter().filter(|l| l.starts_with("+ sky ")).count(),
        2 * lines.len()
    );

    // The report: md and html, each over every cluster's run files.
    let reports: Vec<&&str> = cmds.iter().filter(|l| l.contains(" report ")).collect();
    assert_eq!(reports.len(), 2, "{stdout}");
    for (r, fmt) in reports.iter().zip(["md", "html"]) {
        assert!(r.starts_with(&format!(
            "+ {}",
            root().join("target/release/perfledger").display()
        )));
        for c in &clusters {
            assert!(
                r.contains(&format!("{}/{c}/*.json", out_dir.display())),
                "{r}"
            );
        }
        assert!(r.contains(&format!(
            "--format {fmt} --out {}/report.{fmt}",
            out_dir.display()
        )));
    }
    assert_eq!(cmds.len(), 3 * lines.len() + 2);
}

fn write_exec(path: &Path, body: &str) {
    fs::write(path, body).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn bad_instances_lines_are_refused_naming_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let path = path_without_sky();
    let cases = [
        (
            "aws c7a.large us-east-1 on-demand\naws c7a.large us-east-1 ondemand\n",
            ":2:",
            "unknown pricing model 'ondemand'",
        ),
        (
            "# a comment\n\naws c7a.large us-east-1\n",
            ":3:",
            "missing field 'pricing_model'",
        ),
        ("aws c7a.large\n", ":1:", "missing field 'region'"),
        (
            "aws c7a.large us-east-1 spot cheap\n",
            ":1:",
            "price 'cheap' is not a number",
        ),
        (
            "aws c7a.large us-east-1 spot 0.1 extra\n",
            ":1:",
            "at most 5",
        ),
        (
            "aws c7a.large us-east-1 spot\naws c7a.large us-east-1 spot\n",
            ":2:",
            "the same machine as line 1",
        ),
        ("# nothing\n", "", "no machines listed"),
    ];
    for (i, (content, line, msg)) in cases.iter().enumerate() {
        let f = tmp.path().join(format!("bad{i}.txt"));
        fs::write(&f, content).unwrap();
        for script in ["launch.sh", "slurm/submit.sh"] {
            let o = bash(
                &[
                    fleet(script).to_str().unwrap(),
                    f.to_str().unwrap(),
                    "--dry-run",
                ],
                &path,
                tmp.path(),
            );
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{script} {content:?}: {err}");
            assert!(
                err.contains(&format!("{}{line}", f.display())) && err.contains(msg),
                "{script} {content:?}: {err}"
            );
            assert!(o.stdout.is_empty(), "nothing launched: {}", text(&o.stdout));
        }
    }
    let o = bash(
        &[
            fleet("launch.sh").to_str().unwrap(),
            "/nonexistent/fleet.txt",
            "--dry-run",
        ],
        &path,
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("/nonexistent/fleet.txt: no such file"));
}

#[test]
fn launch_tears_every_cluster_down_and_reports_what_was_collected() {
    // Stand-ins: `sky` (the g6 launch fails), `rsync` (writes a run file, except for g6), and the
    // report binary; each logs its arguments.
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let log = tmp.path().join("calls.log");
    let log_s = log.display();
    write_exec(
        &bin.join("sky"),
        &format!(
            "#!/bin/bash\necho \"sky $*\" >> {log_s}\n\
             if [ \"$1\" = launch ]; then case \"$*\" in *g6.xlarge*) exit 3;; esac; fi\nexit 0\n"
        ),
    );
    write_exec(
        &bin.join("rsync"),
        &format!(
            "#!/bin/bash\necho \"rsync $*\" >> {log_s}\nd=\"${{@: -1}}\"\n\
             case \"$*\" in *g6*) exit 0;; esac\nmkdir -p \"$d\" && echo '{{}}' > \"$d/run.json\"\n"
        ),
    );
    let fake_bin = tmp.path().join("perfledger");
    write_exec(
        &fake_bin,
        &format!("#!/bin/bash\necho \"perfledger $*\" >> {log_s}\n"),
    );
    let out_dir = tmp.path().join("out");
    let path = format!("{}:{}", bin.display(), path_without_sky());
    let o = Command::new("bash")
        .args([
            fleet("launch.sh").to_str().unwrap(),
            fleet("instances.example.txt").to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .current_dir(tmp.path())
        .env("PATH", path)
        .env("PERFLEDGER_BIN", fake_bin)
        .env_remove("PERFLEDGER_RUN_ARGS")
        .output()
        .unwrap();
    let stdout = text(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "one machine failed: {stdout}\n{}",
        text(&o.stderr)
    );
    let calls = fs::read_to_string(log).unwrap();
    let launched: Vec<String> = calls
        .lines()
        .filter(|l| l.starts_with("sky launch "))
        .map(|l| cluster_of(&l.split_whitespace().collect::<Vec<_>>()))
        .collect();
    assert_eq!(launched.len(), example_lines().len());
    for c in &launched {
        let downs = calls
            .lines()
            .filter(|l| *l == format!("sky down -y {c}"))
            .count();
        assert_eq!(downs, 1, "{c} torn down once: {calls}");
    }
    let failed = launched.iter().find(|c| c.contains("g6-xlarge")).unwrap();
    assert_eq!(
        fs::read_to_string(out_dir.join(failed).join("status"))
            .unwrap()
            .trim(),
        "sky launch exit 3"
    );
    let reports: Vec<&str> = calls
        .lines()
        .filter(|l| l.starts_with("perfledger report "))
        .collect();
    assert_eq!(reports.len(), 2, "{calls}");
    for r in reports {
        for c in &launched {
            let f = format!("{}/{c}/run.json", out_dir.display());
            assert_eq!(r.contains(&f), c != failed, "{r}");
        }
    }
}

#[test]
fn k8s_job_renders_per_variant() {
    let tmp = tempfile::tempdir().unwrap();
    let path = path_without_sky();
    for (variant, inst, limit) in [
        ("gpu", "g6.xlarge", Some("nvidia.com/gpu")),
        ("neuron", "trn1.2xlarge", Some("aws.amazon.com/neuron")),
        ("cpu", "c7a.large", None),
    ] {
        let o = bash(
            &[fleet("k8s/render.sh").to_str().unwrap(), inst, variant],
            &path,
            tmp.path(),
        );
        let y = text(&o.stdout);
        assert!(o.status.success(), "{variant}: {}", text(&o.stderr));
        let docs = YamlLoader::load_from_str(&y).expect("the rendered Job is YAML");
        let job = &docs[0];
        assert_eq!(job["kind"].as_str(), Some("Job"));
        assert_eq!(job["spec"]["backoffLimit"].as_i64(), Some(0));
        assert!(job["spec"]["ttlSecondsAfterFinished"].as_i64().unwrap() > 0);
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"].as_str(), Some("Never"));
        assert_eq!(
            pod["nodeSelector"]["node.kubernetes.io/instance-type"].as_str(),
            Some(inst)
        );
        let c = &pod["containers"][0];
        assert!(c["args"][0]
            .as_str()
            .unwrap()
            .contains("bash scripts/fleet/task.sh"));
        let limits = c["resources"]["limits"].as_hash().expect("limits");
        match limit {
            Some(k) => {
                assert_eq!(limits.len(), 1);
                assert_eq!(c["resources"]["limits"][k].as_i64(), Some(1), "{variant}");
            }
            None => assert!(limits.is_empty()),
        }
        let env: Vec<(&str, &str)> = c["env"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap(), e["value"].as_str().unwrap()))
            .collect();
        assert!(env.contains(&("PERFLEDGER_INSTANCE", inst)));
        assert!(env.contains(&("PERFLEDGER_OUT_DIR", "/out")));
        assert_eq!(
            pod["volumes"][0]["emptyDir"].as_hash().map(|h| h.len()),
            Some(0)
        );
        // No placeholder is left outside the container's shell text.
        for l in y.lines().filter(|l| !l.trim_start().starts_with('#')) {
            for k in [
                "JOB_NAME",
                "INSTANCE_TYPE",
                "IMAGE",
                "VARIANT",
                "PRICE",
                "SUITE",
                "PEERS",
            ] {
                assert!(!l.contains(&format!("${{{k}}}")), "{variant}: {l}");
            }
        }
    }
    let o = bash(
        &[fleet("k8s/render.sh").to_str().unwrap(), "c7a.large", "tpu"],
        &path,
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("variant 'tpu'"));
}

#[test]
fn slurm_submit_dry_run_prints_one_sbatch_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("partitions.txt");
    fs::write(
        &f,
        "cpu-c7a c7a.large us-east-1 on-demand\ngpu-l4 g6.xlarge us-east-1 reserved 0.51\n",
    )
    .unwrap();
    let o = bash(
        &[
            fleet("slurm/submit.sh").to_str().unwrap(),
            f.to_str().unwrap(),
            "--dry-run",
            "--suite",
            "quick",
        ],
        &path_without_sky(),
        tmp.path(),
    );
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("+ sbatch --partition=cpu-c7a "));
    assert!(lines[0].contains("--export=ALL,PERFLEDGER_INSTANCE=c7a.large,PERFLEDGER_REGION=us-east-1,PERFLEDGER_PRICING_MODEL=on-demand,PERFLEDGER_SUITE=quick "));
    assert!(!lines[0].contains("PERFLEDGER_PRICE="));
    assert!(lines[1].contains(",PERFLEDGER_PRICE=0.51"));
    assert!(lines
        .iter()
        .all(|l| l.ends_with(" scripts/fleet/slurm/perfledger.sbatch")));
    let sbatch = fs::read_to_string(fleet("slurm/perfledger.sbatch")).unwrap();
    assert!(sbatch.lines().any(|l| l == "#SBATCH --exclusive"));
    assert!(sbatch.contains("scripts/fleet/task.sh"));
}
