//! The documented settings file at the repository root parses, passes
//! validation, and says exactly what the defaults are.

use std::sync::Mutex;

use hookgate_server::settings::Settings;

/// The tests change the process environment, which settings read.
static ENVIRONMENT: Mutex<()> = Mutex::new(());

#[test]
fn documented_settings_file_matches_the_defaults() {
    let _environment = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../hookgate.example.toml");
    let from_file = Settings::load(Some(std::path::Path::new(path))).expect("the example loads");
    let defaults = Settings::default();

    let as_json = |s: &Settings| serde_json::to_value(s).expect("settings serialise");
    assert_eq!(as_json(&from_file), as_json(&defaults));
}

#[test]
fn variables_that_name_no_setting_are_left_out() {
    let _environment = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
    // The command line's own variables and the test suite's share the
    // prefix; a server started from the same shell must not refuse them.
    std::env::set_var("HOOKGATE_SERVER", "http://127.0.0.1:1");
    std::env::set_var("HOOKGATE_PYTHON_SOMETHING", "/usr/bin/python3");
    std::env::set_var("HOOKGATE_DELIVERY__JITTER", "0.25");
    let settings = Settings::load(None).expect("unrelated variables are ignored");
    assert_eq!(settings.listen, Settings::default().listen);
    assert_eq!(
        settings.delivery.jitter, 0.25,
        "a setting's variable still applies"
    );
    std::env::remove_var("HOOKGATE_DELIVERY__JITTER");

    let unused = Settings::unused_environment();
    assert!(
        unused.contains(&"HOOKGATE_PYTHON_SOMETHING".to_owned()),
        "{unused:?}"
    );
    assert!(!unused.iter().any(|name| name == "HOOKGATE_CONFIG"));
}
