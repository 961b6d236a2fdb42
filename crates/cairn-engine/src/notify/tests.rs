#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use cairn_model::config::NotifySink;
use cairn_testkit::http_recorder::{Answer, Recorder};
use cairn_testkit::smtp_server::SmtpServer;

use super::*;

fn secret(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

fn denied() -> ChangeRecord {
    ChangeRecord {
        kind: "denied".into(),
        workload: "hello-web".into(),
        environment: "production".into(),
        actor: "rita@example.org".into(),
        from_digest: None,
        to_digest: "sha256:abc".into(),
        log_index: 7,
        at_ms: 0,
        json: json!({"decision": {
            "workload": "hello-web", "environment": "production", "artifact": "sha256:abc",
            "actor": "rita@example.org", "intent": "promote", "allow": false,
            "reasons": [{"rule": "path", "message": "not deployed to staging <first> & approved"}],
            "overridden": null, "policyDigest": "sha256:1", "inputDigest": "sha256:2",
            "advisoryDb": null, "decidedAt": "2026-12-06T10:00:00Z"
        }, "outcome": "denied: nothing was deployed"})
        .to_string(),
    }
}

fn outcomes(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("outbox.jsonl")).unwrap_or_default()
}

#[test]
fn a_denied_promotion_reaches_slack_a_signed_webhook_and_aiosmtpd() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::at(dir.path());
    let slack = Recorder::start(vec![Answer::Status(200)]);
    let hook = Recorder::start(vec![Answer::Status(204)]);
    let smtp = SmtpServer::start();
    let mut org = OrgConfig {
        notify: Vec::new(),
        ..OrgConfig::default()
    };
    org.forges.link = Some("https://cairn.example.org".into());
    org.notify = vec![
        NotifySink {
            target: NotifyTarget::Slack {
                url_file: secret(
                    dir.path(),
                    "slack.url",
                    &format!("{}/services/T0/B0/XYZ\n", slack.url),
                ),
            },
            events: vec![NotifyEvent::PromotionDenied],
        },
        NotifySink {
            target: NotifyTarget::Webhook {
                url: format!("{}/cairn", hook.url),
                secret_file: Some(secret(dir.path(), "hook.secret", "k3y")),
            },
            events: NotifyEvent::ALL.to_vec(),
        },
        NotifySink {
            target: NotifyTarget::Email {
                smtp: smtp.address(),
                from: "cairn@example.org".into(),
                to: vec!["ops@example.org".into(), "oncall@example.org".into()],
            },
            events: vec![NotifyEvent::PromotionDenied],
        },
        // Wants something else: gets nothing.
        NotifySink {
            target: NotifyTarget::Webhook {
                url: "http://127.0.0.1:9/never".into(),
                secret_file: None,
            },
            events: vec![NotifyEvent::RunFailed],
        },
    ];
    let change = denied();
    change_(&data, &org, &change);
    assert_eq!(
        outbox::flush(Duration::from_secs(20)),
        0,
        "{}",
        outcomes(dir.path())
    );

    let seen = slack.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/services/T0/B0/XYZ");
    let body = seen[0].json();
    println!("slack: {body:#}");
    assert_eq!(body["text"], "Promotion of hello-web to production denied");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[1]["type"], "section");
    let section = blocks[1]["text"]["text"].as_str().unwrap();
    assert!(
        section
            .contains("*denied by:* [path] not deployed to staging &lt;first&gt; &amp; approved"),
        "{section}"
    );
    assert!(
        blocks[2]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .contains("<https://cairn.example.org/environments|")
    );

    let seen = hook.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-cairn-event"), Some("promotion-denied"));
    assert_eq!(
        seen[0].header("x-cairn-signature-256").unwrap(),
        crate::change_sink::signature(b"k3y", &seen[0].body)
    );
    assert_eq!(seen[0].json()["facts"]["workload"], "hello-web");

    let mail = smtp.messages(1, Duration::from_secs(5));
    assert_eq!(mail.len(), 1);
    println!("mail: {:#}", mail[0]);
    assert_eq!(mail[0]["mail_from"], "cairn@example.org");
    assert_eq!(
        mail[0]["rcpt_tos"],
        json!(["ops@example.org", "oncall@example.org"])
    );
    let content = mail[0]["content"].as_str().unwrap();
    assert!(
        content.contains("Subject: [cairn] Promotion of hello-web to production denied"),
        "{content}"
    );
    let b64: String = content
        .split("\r\n\r\n")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    let text = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap();
    assert!(
        text.contains("denied by: [path] not deployed to staging"),
        "{text}"
    );

    // The Slack URL (a secret) is in no record.
    let log = outcomes(dir.path());
    assert!(!log.contains("XYZ") && !log.contains(&slack.url), "{log}");
}

/// `change` under another name (the module has a `change` function).
fn change_(data: &DataDir, org: &OrgConfig, c: &ChangeRecord) {
    change(data, org, c, &json!({"id": 1}));
}

#[test]
fn a_hanging_sink_is_bounded_and_delays_no_other_sink() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::at(dir.path());
    let hanging = Recorder::start(vec![Answer::Hang(Duration::from_secs(60)); 5]);
    let fine = Recorder::start(vec![]);
    let org = OrgConfig {
        notify: vec![
            NotifySink {
                target: NotifyTarget::Slack {
                    url_file: secret(dir.path(), "slack.url", &format!("{}/hook", hanging.url)),
                },
                events: NotifyEvent::ALL.to_vec(),
            },
            NotifySink {
                target: NotifyTarget::Webhook {
                    url: format!("{}/ok", fine.url),
                    secret_file: None,
                },
                events: NotifyEvent::ALL.to_vec(),
            },
        ],
        ..OrgConfig::default()
    };
    let notice = Notice {
        event: NotifyEvent::RunFailed,
        title: "Run 1 of x failed".into(),
        facts: vec![],
        link: None,
        record: json!({}),
    };
    let started = Instant::now();
    send_with(
        &data,
        &org,
        &notice,
        Policy {
            attempts: 2,
            first_backoff: Duration::from_millis(50),
        },
        Duration::from_millis(400),
    );
    assert!(started.elapsed() < Duration::from_millis(100));
    // The other sink is not held up by the hanging one.
    assert_eq!(fine.wait_for(1, Duration::from_secs(2)).len(), 1);
    assert!(started.elapsed() < Duration::from_millis(800));
    assert_eq!(outbox::flush(Duration::from_secs(10)), 0);
    let log = outcomes(dir.path());
    println!("{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("\"gave-up\"") && l.contains("timed out") && l.contains("slack")),
        "{log}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn smtp_that_offers_starttls_is_never_sent_to_in_clear_after_a_failed_handshake() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut heard = Vec::new();
        write!(s, "220 fake ESMTP\r\n").unwrap();
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        heard.push(line.clone());
        write!(s, "250-fake\r\n250 STARTTLS\r\n").unwrap();
        line.clear();
        r.read_line(&mut line).unwrap();
        heard.push(line.clone());
        write!(s, "220 go ahead\r\nthis is not TLS\r\n").unwrap();
        // Whatever comes now is what the client sent after the handshake.
        let mut rest = String::new();
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = std::io::Read::read_to_string(&mut r, &mut rest);
        heard.push(rest);
        heard
    });
    let mail = crate::smtp::Mail {
        from: "cairn@example.org".into(),
        to: vec!["ops@example.org".into()],
        subject: "x".into(),
        body: "y".into(),
    };
    let err = crate::smtp::send(&addr, &mail, Duration::from_secs(2)).unwrap_err();
    println!("{err:?}");
    let heard = server.join().unwrap();
    assert!(heard[0].starts_with("EHLO"), "{heard:?}");
    assert_eq!(heard[1], "STARTTLS\r\n");
    assert!(!heard[2].contains("MAIL FROM"), "{heard:?}");
}

#[test]
fn each_event_goes_only_where_it_is_wanted() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::at(dir.path());
    let production = Recorder::start(vec![]);
    let failures = Recorder::start(vec![]);
    let org = OrgConfig {
        notify: vec![
            NotifySink {
                target: NotifyTarget::Webhook {
                    url: format!("{}/prod", production.url),
                    secret_file: None,
                },
                events: vec![NotifyEvent::ProductionChange],
            },
            NotifySink {
                target: NotifyTarget::Webhook {
                    url: format!("{}/runs", failures.url),
                    secret_file: None,
                },
                events: vec![NotifyEvent::RunFailed, NotifyEvent::ExposureOverdue],
            },
        ],
        ..OrgConfig::default()
    };
    let deploy = |environment: &str, kind: &str| ChangeRecord {
        kind: kind.into(),
        environment: environment.into(),
        ..denied()
    };
    // A deploy to staging is no production change; one to production (the
    // path's last environment) is, and so is a rollback there.
    change_(&data, &org, &deploy("staging", "deploy"));
    change_(&data, &org, &deploy("production", "deploy"));
    change_(&data, &org, &deploy("production", "rollback"));
    change_(&data, &org, &deploy("production", "policy-change"));
    let run = cairn_model::RunRecord {
        id: cairn_model::RunId(9),
        workload: "hello-web".into(),
        commit: "d".repeat(40),
        git_ref: None,
        status: cairn_model::RunStatus::Failed,
        reason: Some("stage `unit-tests` failed: exit code 1".into()),
        created_at_ms: 0,
        started_at_ms: None,
        finished_at_ms: None,
        owner: None,
        trigger: cairn_model::Trigger::Cli,
    };
    run_failed(&data, &org, &run);
    exposure_overdue(
        &data,
        &org,
        "GHSA-x in production of hello-web is past its deadline".into(),
        &json!({"exposure": {"workload": "hello-web", "environment": "production",
                             "advisory": "GHSA-x", "deadline": "2026-12-01T00:00:00Z"}}),
    );
    assert_eq!(outbox::flush(Duration::from_secs(10)), 0);
    let prod: Vec<String> = production
        .seen()
        .iter()
        .map(|s| s.json()["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        prod,
        [
            "deploy of hello-web in production",
            "rollback of hello-web in production"
        ]
    );
    let other: Vec<(String, String)> = failures
        .seen()
        .iter()
        .map(|s| {
            (
                s.header("x-cairn-event").unwrap().to_owned(),
                s.json()["facts"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        other,
        [
            (
                "run-failed".to_owned(),
                "stage `unit-tests` failed: exit code 1".to_owned()
            ),
            ("exposure-overdue".to_owned(), String::new()),
        ]
    );
}
