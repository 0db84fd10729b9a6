//! `[[users]]`, `auth.allow_dynamic_users` and the per-user limits.

use super::*;

const TWO_USERS: &str = r#"
    [sip.trunk]
    uri = "sip:pbx.example.com"

    [[users]]
    name = "alice"
    extension = "1001"
    register = true
    password = "from-file"
    expires = 600

    [[users]]
    name = "bob.smith"
    register = true
    registrar = "sip:reg.example.com;transport=tcp"
    domain = "example.com"
    username = "bob-auth"
"#;

fn alice() -> UserConfig {
    UserConfig {
        name: "alice".into(),
        extension: "1001".into(),
        register: true,
        password: "from-file".into(),
        expires: 600,
        ..UserConfig::default()
    }
}

fn bob() -> UserConfig {
    UserConfig {
        name: "bob.smith".into(),
        extension: "bob.smith".into(),
        register: true,
        registrar: Some("sip:reg.example.com;transport=tcp".into()),
        domain: "example.com".into(),
        username: "bob-auth".into(),
        ..UserConfig::default()
    }
}

#[test]
fn defaults_have_no_users_and_the_documented_limits() {
    let config = Config::default();
    assert!(config.users.is_empty());
    assert!(!config.auth.allow_dynamic_users);
    assert_eq!(config.limits.per_user_calls, 4);
    assert_eq!(config.limits.max_ring_sessions, 10);
    assert_eq!(config.user("alice"), None);
    let user = UserConfig::default();
    assert_eq!((user.register, user.registrar.clone()), (false, None));
    assert_eq!(user.expires, 300);
}

#[test]
fn two_users_are_read_with_derived_defaults() {
    let config = load(TWO_USERS);
    assert_eq!(config.users, [alice(), bob()]);
    assert_eq!(config.user("bob.smith"), Some(&bob()));
    assert_eq!(config.user_by_extension("1001"), Some(&alice()));
    assert_eq!(
        config.user_by_extension("alice"),
        None,
        "routed by extension"
    );
    assert_eq!(config.user_by_extension("bob.smith"), Some(&bob()));
    assert_eq!(
        config.user_registrar(&config.users[0]),
        Some("sip:pbx.example.com"),
        "no registrar: the trunk"
    );
    assert_eq!(
        config.user_registrar(&config.users[1]),
        Some("sip:reg.example.com;transport=tcp")
    );
}

#[test]
fn dynamic_users_and_limits_are_read() {
    let text = "[auth]\nallow_dynamic_users = true\n[limits]\nper_user_calls = 100\nmax_ring_sessions = 1\n";
    let config = load(text);
    assert!(config.auth.allow_dynamic_users);
    assert_eq!(config.limits.per_user_calls, 100);
    assert_eq!(config.limits.max_ring_sessions, 1);
}

#[test]
fn per_user_limits_are_checked() {
    let errors = rejected("[limits]\nper_user_calls = 0\nmax_ring_sessions = 0\n");
    assert_eq!(
        keys(&errors),
        ["limits.max_ring_sessions", "limits.per_user_calls"]
    );
    let errors = rejected("[limits]\nper_user_calls = 101\n");
    assert_eq!(
        reason(&errors, "limits.per_user_calls"),
        "must be from 1 to 100, got 101"
    );
}

#[test]
fn every_user_error_is_named_by_its_element() {
    let long = "x".repeat(65);
    let text = format!(
        r#"
        [[users]]
        name = "alice"
        extension = "1001"
        register = true
        expires = 30
        colour = "red"

        [[users]]
        name = "alice"
        extension = "10 01"
        registrar = "pbx.example.com"

        [[users]]
        extension = "1001"
        domain = "a@b"

        [[users]]
        name = "{long}"
        expires = "soon"

        [[users]]
        name = 7
        "#
    );
    let errors = rejected(&text);
    assert_eq!(
        keys(&errors),
        [
            "users[0].colour",
            "users[3].expires",
            "users[4].name",
            "users[0].registrar",
            "users[0].expires",
            "users[1].extension",
            "users[1].registrar",
            "users[2].name",
            "users[2].domain",
            "users[3].name",
            "users[1].name",
            "users[2].extension",
        ],
        "{errors}"
    );
    assert_eq!(reason(&errors, "users[0].colour"), "unknown key");
    assert!(reason(&errors, "users[0].registrar").contains("sip.trunk.uri"));
    assert_eq!(
        reason(&errors, "users[0].expires"),
        "must be from 60 to 86400, got 30"
    );
    assert!(reason(&errors, "users[1].extension").contains("\"10 01\""));
    assert!(reason(&errors, "users[1].registrar").contains("sip: URI"));
    assert!(reason(&errors, "users[2].name").starts_with("required"));
    assert!(reason(&errors, "users[3].name").contains("1 to 64 characters"));
    assert_eq!(
        reason(&errors, "users[1].name"),
        "\"alice\" is already users[0].name"
    );
    assert_eq!(
        reason(&errors, "users[2].extension"),
        "\"1001\" is already users[0].extension"
    );
}

#[test]
fn misshapen_users_are_errors() {
    let errors = rejected("users = 5\n");
    assert_eq!(keys(&errors), ["users"]);
    assert!(reason(&errors, "users").contains("array of tables"));

    // A bad element keeps its index, and gets no further errors of its own.
    let errors = rejected("users = [5, { name = \"a\", password = 1 }, { name = \"a\" }]\n");
    assert_eq!(
        keys(&errors),
        ["users[0]", "users[1].password", "users[2].name"]
    );
    assert_eq!(
        reason(&errors, "users[0]"),
        "expected a table, got a integer"
    );

    assert!(load("users = []\n").users.is_empty());
}

#[test]
fn env_sets_keys_of_users_the_file_defines() {
    let vars = env(&[
        ("SIPHON_USERS_0_PASSWORD", "from-env"),
        ("SIPHON_USERS_1_PASSWORD", "bobs secret"),
        ("SIPHON_USERS_1_EXPIRES", "3600"),
    ]);
    let config = Config::from_toml_str(TWO_USERS, &vars).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.users[0].password, "from-env", "env beats file");
    assert_eq!(config.users[1].password, "bobs secret");
    assert_eq!(config.users[1].expires, 3600);
    assert_eq!(config.users[0].expires, 600);
}

#[test]
fn env_cannot_add_users_and_bad_values_name_their_variable() {
    let errors = errors_with(
        TWO_USERS,
        &[
            ("SIPHON_USERS_2_PASSWORD", "x"),
            ("SIPHON_USERS_0_EXPIRES", "10"),
        ],
    );
    assert_eq!(
        keys(&errors),
        ["SIPHON_USERS_2_PASSWORD", "users[0].expires"]
    );
    assert!(reason(&errors, "SIPHON_USERS_2_PASSWORD").contains("[[users]]"));
    assert_eq!(
        reason(&errors, "users[0].expires"),
        "must be from 60 to 86400, got 10 (set by SIPHON_USERS_0_EXPIRES)"
    );
    let errors = errors_with("", &[("SIPHON_USERS_0_PASSWORD", "x")]);
    assert_eq!(keys(&errors), ["SIPHON_USERS_0_PASSWORD"]);
}

#[test]
fn user_variables_are_derived_per_element() {
    let table: toml::Table = TWO_USERS.parse().unwrap();
    let names: Vec<String> = schema::leaves(&schema::template(&table))
        .iter()
        .map(|(path, _)| env::var_name(path))
        .collect();
    for name in ["SIPHON_USERS_0_PASSWORD", "SIPHON_USERS_1_REGISTRAR"] {
        assert!(names.iter().any(|n| n == name), "{name} missing");
    }
    assert!(!names.iter().any(|n| n.starts_with("SIPHON_USERS_2_")));
}

#[test]
fn users_are_written_back_unchanged() {
    let config = load(TWO_USERS);
    let text = toml::to_string(&schema::write(&config)).unwrap();
    assert_eq!(load(&text), config);
}

#[test]
fn debug_output_hides_user_passwords() {
    let shown = format!("{:?}", load(TWO_USERS));
    assert!(!shown.contains("from-file"), "{shown}");
    assert!(shown.contains("bob-auth"), "{shown}");
}

#[test]
fn an_extension_taken_from_the_name_must_be_unique_too() {
    let text = "[[users]]\nname = \"x\"\nextension = \"bob\"\n[[users]]\nname = \"bob\"\n";
    let errors = rejected(text);
    assert_eq!(keys(&errors), ["users[1].extension"]);
    assert_eq!(
        reason(&errors, "users[1].extension"),
        "\"bob\" is already users[0].extension"
    );
}

#[test]
fn client_register_needs_a_registrar_and_a_sane_expiry() {
    let errors = rejected("[sip.client_register]\nenabled = true\nexpires = 5\n");
    assert_eq!(
        keys(&errors),
        ["sip.client_register.enabled", "sip.client_register.expires"]
    );
    let errors = rejected("[sip.client_register]\nregistrar = \"http://pbx\"\n");
    assert_eq!(keys(&errors), ["sip.client_register.registrar"]);
    let config =
        load("[sip.trunk]\nuri = \"sip:pbx.example.com\"\n[sip.client_register]\nenabled = true\n");
    assert_eq!(config.client_registrar(), Some("sip:pbx.example.com"));
    let vars = env(&[(
        "SIPHON_SIP_CLIENT_REGISTER_REGISTRAR",
        "sip:reg.example.com",
    )]);
    let config = Config::from_toml_str("", &vars).unwrap();
    assert_eq!(config.client_registrar(), Some("sip:reg.example.com"));
}

#[test]
fn cluster_keys_are_checked_and_read_from_the_environment() {
    let errors = rejected(
        "[cluster]\nregistrar = \"kamailio:5060\"\nexpires = 9\n\
         unregister_after_secs = 4000\ninstance = \"a b\"\n",
    );
    assert_eq!(
        keys(&errors),
        [
            "cluster.registrar",
            "cluster.expires",
            "cluster.unregister_after_secs",
            "cluster.instance"
        ]
    );
    assert_eq!(load("").cluster.registrar, None, "off by default");
    let vars = env(&[
        ("SIPHON_CLUSTER_REGISTRAR", "sip:127.0.0.2:5060"),
        ("SIPHON_CLUSTER_INSTANCE", "siphon-b"),
    ]);
    let config = Config::from_toml_str("", &vars).unwrap();
    assert_eq!(
        (
            config.cluster.registrar.as_deref(),
            config.cluster.instance.as_str()
        ),
        (Some("sip:127.0.0.2:5060"), "siphon-b")
    );
    assert_eq!(
        config.cluster.front_door().as_deref(),
        Some("127.0.0.2:5060")
    );
    assert_eq!(load("").cluster.front_door(), None, "not clustered");
    let config =
        load("[cluster]\nregistrar = \"sip:10.0.0.2\"\ncontact = \"sbc.example;transport=tcp\"\n");
    assert_eq!(
        config.cluster.front_door().as_deref(),
        Some("sbc.example;transport=tcp")
    );
    let errors = rejected("[cluster]\ncontact = \"sip:alice@10.0.0.2\"\n");
    assert_eq!(keys(&errors), ["cluster.contact"]);
    let errors =
        rejected("[sip]\nudp = \"127.0.0.1:5060\"\n[cluster]\nregistrar = \"sips:k.example\"\n");
    assert!(reason(&errors, "cluster.registrar").contains("set sip.tls"));
}
