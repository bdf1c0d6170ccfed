//! Config pipeline tests: strings in, every problem out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::*;
use crate::api::Format;
use crate::clock::Clock;
use crate::sync::Job;
use crate::sync::fields::Field;
use crate::sync::plan::ConflictPolicy;

const EXAMPLE: &str = include_str!("../../config/tariscope-sync.example.toml");

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn problems(text: &str, e: &HashMap<String, String>) -> Vec<String> {
    match from_toml_str(text, e) {
        Ok(_) => Vec::new(),
        Err(ConfigError::Invalid(p)) => p.iter().map(|p| p.to_string()).collect(),
        Err(other) => vec![other.to_string()],
    }
}

#[test]
fn example_config_is_valid_with_a_password_from_the_environment() {
    let e = env(&[("TARISCOPE_SYNC__API__PASSWORD", "s3cret")]);
    let c = from_toml_str(EXAMPLE, &e).expect("example config must be valid");
    assert_eq!(c.api.password.expose(), "s3cret");
    assert_eq!(c.scope.nodes, vec![1]);
    assert_eq!(c.jobs.len(), Job::ALL.len());
    assert!(c.jobs[&Job::Payments].cron.is_some());
}

#[test]
fn example_config_lists_every_key() {
    let tree = merged_tree(EXAMPLE, &HashMap::new()).unwrap();
    let mut values = BTreeMap::new();
    leaves(&tree, String::new(), &mut values);
    let mut present: BTreeSet<String> = values.into_keys().collect();
    // Empty tables (like [api.profile]) count as present.
    present.insert("api.profile".to_string());
    let missing: Vec<_> = key_set()
        .known
        .into_iter()
        .filter(|k| !present.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from config/tariscope-sync.example.toml: {missing:?}"
    );
}

#[test]
fn reports_every_problem_at_once_by_key_path() {
    let text = r#"
        timezone = "Mars/Olympus"
        [api]
        base_url = "ftp://x"
        username = "u"
        password = "p"
        format = "yaml"
        rate_per_sec = -1
        [jobs.payments]
        schedule = "*/61 * * * *"
        [jobs.nonsense]
        enabled = true
        [push]
        conflict_policy = "coin-flip"
        [payments]
        post = "maybe"
        earliest_day = "01.02.2025"
        [serve]
        listen = "not an address"
    "#;
    let p = problems(text, &HashMap::new());
    let expect = [
        "api.base_url:",
        "api.format: \"yaml\" is not one of json, xml",
        "api.rate_per_sec:",
        "jobs.payments.schedule: \"*/61 * * * *\" is not a valid cron expression",
        "jobs.nonsense.enabled: unknown key",
        "scope: required (no default): no nodes",
        "push.conflict_policy:",
        "payments.post:",
        "payments.earliest_day: \"01.02.2025\" is not a date yyyy-mm-dd",
        "serve.listen:",
        "timezone:",
    ];
    for e in expect {
        assert!(
            p.iter().any(|x| x.starts_with(e)),
            "no problem starting {e:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), expect.len(), "{p:#?}");
}

#[test]
fn environment_overrides_the_file() {
    let e = env(&[
        ("TARISCOPE_SYNC__API__PASSWORD", "x"),
        ("TARISCOPE_SYNC__API__RATE_PER_SEC", "3.5"),
        ("TARISCOPE_SYNC__SCOPE__NODES", "4,5"),
        ("TARISCOPE_SYNC__JOBS__PAYMENTS__ENABLED", "false"),
        ("UNRELATED", "ignored"),
    ]);
    let c = from_toml_str("[api]\nusername = \"u\"\nrate_per_sec = 9\n", &e).unwrap();
    assert_eq!(c.api.rate_per_sec, 3.5);
    assert_eq!(c.scope.nodes, vec![4, 5]);
    assert!(!c.jobs[&Job::Payments].enabled);
    assert!(
        c.payments.post && c.payments.earliest_day.is_none(),
        "defaults"
    );
}

#[test]
fn password_sources() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "from-file\n").unwrap();
    let base = "[scope]\nnodes=[1]\n[api]\nusername = \"u\"\n";
    let text = format!("{base}password_file = {:?}\n", file.display().to_string());
    let c = from_toml_str(&text, &HashMap::new()).unwrap();
    assert_eq!(c.api.password.expose(), "from-file");
    assert_eq!(format!("{:?}", c.api.password), "[redacted]");

    std::fs::write(dir.path().join(schema::CREDENTIAL_NAME), "cred").unwrap();
    let e = env(&[("CREDENTIALS_DIRECTORY", dir.path().to_str().unwrap())]);
    let c = from_toml_str(base, &e).unwrap();
    assert_eq!(c.api.password.expose(), "cred");

    let p = problems(base, &HashMap::new());
    assert!(
        p[0].starts_with("api.password: required (no default)"),
        "{p:?}"
    );
    let p = problems(
        &format!("{base}password_file = \"/nonexistent/pw\"\n"),
        &HashMap::new(),
    );
    assert!(p[0].contains("cannot read the password file"), "{p:?}");
}

#[test]
fn five_field_crontab_lines_are_accepted() {
    assert!(schema::parse_schedule("*/5 * * * *").is_ok());
    assert!(schema::parse_schedule("0 */5 * * * *").is_ok());
    assert!(schema::parse_schedule("*/61 * * * *").is_err());
    assert!(schema::parse_schedule("every day").is_err());
}

#[test]
fn empty_scope_is_a_problem_only_when_pull_jobs_run() {
    let base = "[api]\nusername = \"u\"\npassword = \"p\"\n";
    let p = problems(base, &HashMap::new());
    assert!(p.iter().any(|x| x.starts_with("scope:")), "{p:?}");
    let off = format!(
        "{base}[jobs.subscribers]\nenabled=false\n[jobs.payments]\nenabled=false\n[jobs.charges]\nenabled=false\n[jobs.summaries]\nenabled=false\n"
    );
    assert!(problems(&off, &HashMap::new()).is_empty());
}

#[test]
fn bad_toml_is_a_parse_error() {
    let err = from_toml_str("[api\nx=", &HashMap::new()).unwrap_err();
    assert!(matches!(err, ConfigError::Parse(_)), "{err}");
}

#[test]
fn api_profile_overrides_are_parsed_and_checked() {
    let base = "[scope]\nnodes=[1]\n[api]\nusername = \"u\"\npassword = \"p\"\n";
    let good = format!("{base}[api.profile]\nlists_are_partial = true\n");
    let c = from_toml_str(&good, &HashMap::new()).unwrap();
    assert!(c.api.profile.lists_are_partial);
    let bad = format!("{base}[api.profile]\nno_such_key = 1\n");
    let p = problems(&bad, &HashMap::new());
    assert!(p.len() == 1 && p[0].starts_with("api.profile:"), "{p:?}");
}

#[test]
fn choices_are_parsed_once_into_what_the_program_uses() {
    let text = "[scope]\nnodes=[1]\n[api]\nusername = \"u\"\npassword = \"p\"\nformat = \"xml\"\n\
        [push]\nconflict_policy = \"manual\"\nnatural_key = \"none\"\n[log]\nformat = \"json\"\n\
        [jobs.push]\nconcurrency = 3\n[jobs.payments]\nenabled = false\n";
    let c = from_toml_str(text, &HashMap::new()).unwrap();
    assert_eq!(c.client_config().format, Format::Xml);
    assert_eq!(c.log.format, LogFormat::Json);
    let push = c.push_options(Clock::system());
    assert_eq!(push.policy, ConflictPolicy::Manual);
    assert_eq!(push.natural_key, None);
    assert_eq!(push.concurrency, 3);
    let c = from_toml_str(
        "[scope]\nnodes=[1]\n[api]\nusername = \"u\"\npassword = \"p\"\n[push]\nnatural_key = \"email\"\n",
        &HashMap::new(),
    )
    .unwrap();
    assert_eq!(
        c.push_options(Clock::system()).natural_key,
        Some(Field::Email)
    );
    assert_eq!(c.push.conflict_policy, ConflictPolicy::RemoteWins);
}

#[test]
fn job_selection_keeps_run_order() {
    let base = "[scope]\nnodes=[1]\n[api]\nusername = \"u\"\npassword = \"p\"\n[jobs.charges]\nenabled = false\n";
    let c = from_toml_str(base, &HashMap::new()).unwrap();
    assert_eq!(
        c.select_jobs(&[]),
        vec![
            Job::Reference,
            Job::Subscribers,
            Job::Payments,
            Job::Summaries,
            Job::Push
        ]
    );
    assert_eq!(
        c.select_jobs(&[Job::Push, Job::Charges]),
        vec![Job::Charges, Job::Push],
        "named jobs run even when disabled, in pipeline order"
    );
}

#[test]
fn a_rate_of_zero_means_no_rate_limit_and_a_negative_rate_is_refused() {
    let base = "[scope]\nnodes=[1]\n[api]\nusername = \"u\"\npassword = \"p\"\n";
    let c = from_toml_str(&format!("{base}rate_per_sec = 0\n"), &HashMap::new()).unwrap();
    assert_eq!(c.api.rate_per_sec, 0.0);
    let limiter = crate::api::Limiter::new(c.client_config().rate_per_sec, 1).unwrap();
    assert!(!limiter.is_rate_limited(), "0 must turn the rate limit off");
    let e = env(&[("TARISCOPE_SYNC__API__RATE_PER_SEC", "0")]);
    assert_eq!(from_toml_str(base, &e).unwrap().api.rate_per_sec, 0.0);
    let p = problems(&format!("{base}rate_per_sec = -0.5\n"), &HashMap::new());
    assert_eq!(
        p,
        vec!["api.rate_per_sec: expected a number of 0 or more, found -0.5".to_string()]
    );
}

/// Keys whose comment block in the example has a line starting `# Required`.
fn required_in_example(text: &str) -> BTreeSet<String> {
    let mut section = String::new();
    let mut required = false;
    let mut out = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            required |= line.starts_with("# Required");
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{name}.");
        } else if let Some((key, _)) = line.split_once('=')
            && required
        {
            out.insert(format!("{section}{}", key.trim()));
        }
        required = false;
    }
    out
}

fn leaves(v: &serde_json::Value, prefix: String, out: &mut BTreeMap<String, serde_json::Value>) {
    match v.as_object() {
        Some(map) => {
            for (k, child) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(child, p, out);
            }
        }
        None => {
            out.insert(prefix, v.clone());
        }
    }
}

#[test]
fn example_config_marks_the_required_keys_and_shows_every_other_default() {
    let keys = key_set();
    let required: BTreeSet<String> = keys.required.iter().cloned().collect();
    assert_eq!(
        required_in_example(EXAMPLE),
        required,
        "keys marked `# Required` in the example vs keys the schema requires"
    );
    let mut values = BTreeMap::new();
    leaves(
        &merged_tree(EXAMPLE, &HashMap::new()).unwrap(),
        String::new(),
        &mut values,
    );
    let same = |a: &serde_json::Value, b: &serde_json::Value| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    };
    for key in keys.known.iter().filter(|k| !required.contains(*k)) {
        let Some(shown) = values.get(key) else {
            continue; // a table such as [api.profile]; the key-set test covers presence
        };
        match keys.defaults.get(key) {
            Some(default) => assert!(
                same(shown, default),
                "{key}: the example shows {shown} but the default is {default}"
            ),
            None => assert_eq!(
                shown,
                &serde_json::json!(""),
                "{key} has no default: the example leaves it empty"
            ),
        }
    }
}

#[test]
fn missing_required_keys_are_named_as_required() {
    let p = problems("", &HashMap::new());
    for key in ["api.username", "api.password", "scope"] {
        assert!(
            p.iter()
                .any(|x| x.starts_with(&format!("{key}: required (no default): "))),
            "{key} in {p:#?}"
        );
    }
    let err = from_toml_str("", &HashMap::new()).unwrap_err().to_string();
    assert!(
        err.contains("keys marked Required there have no default"),
        "{err}"
    );
}

#[test]
fn serve_listen_defaults_to_the_documented_address_and_empty_turns_it_off() {
    let base = "[scope]\nnodes=[1]\n[api]\nusername = \"u\"\npassword = \"p\"\n";
    let c = from_toml_str(base, &HashMap::new()).unwrap();
    assert_eq!(c.serve.listen, Some("127.0.0.1:9184".parse().unwrap()));
    let c = from_toml_str(&format!("{base}[serve]\nlisten = \"\"\n"), &HashMap::new()).unwrap();
    assert_eq!(c.serve.listen, None);
}

#[test]
fn a_postgres_mirror_is_exclusive_with_the_file_and_says_what_is_wrong() {
    let base = "[scope]\nnodes=[1]\n[api]\nusername = \"u\"\npassword = \"p\"\n";
    let c = from_toml_str(
        &format!(
            "{base}[mirror]\nurl = \"postgres://sync@db:5433/mirror\"\n[ha]\ntakeover_secs = 9\n"
        ),
        &HashMap::new(),
    )
    .unwrap();
    assert_eq!(c.mirror.shown(), "postgres://sync@db:5433/mirror");
    assert_eq!(c.mirror.takeover, std::time::Duration::from_secs(9));
    let c = from_toml_str(base, &HashMap::new()).unwrap();
    assert!(c.mirror.postgres.is_none());
    assert_eq!(c.mirror.takeover, std::time::Duration::from_secs(15));

    let p = problems(
        &format!("{base}[mirror]\npath = \"m.db\"\nurl = \"postgres://sync@db/mirror\"\n"),
        &HashMap::new(),
    );
    assert!(
        p.iter()
            .any(|p| p.starts_with("mirror.path: set either mirror.path")),
        "{p:?}"
    );
    let p = problems(
        &format!("{base}[mirror]\nurl = \"mysql://x@h/db\"\n"),
        &HashMap::new(),
    );
    assert!(
        p.iter()
            .any(|p| p.starts_with("mirror.url:") && p.contains("postgres://")),
        "{p:?}"
    );
    let p = problems(
        &format!("{base}[mirror]\npassword_file = \"/pw\"\n"),
        &HashMap::new(),
    );
    assert!(p.iter().any(|p| p.contains("set mirror.url too")), "{p:?}");
    let p = problems(
        &format!(
            "{base}[mirror]\nurl = \"postgres://sync@db/mirror\"\npassword_file = \"/nonexistent/pw\"\n"
        ),
        &HashMap::new(),
    );
    assert!(
        p.iter().any(|p| p.starts_with("mirror.password_file:")),
        "{p:?}"
    );
    let p = problems(&format!("{base}[ha]\ntakeover_secs = 1\n"), &HashMap::new());
    assert!(p.iter().any(|p| p.starts_with("ha.takeover_secs")), "{p:?}");
}
