//! `stockflight-batch` on its built-in schedule: with no snapshot yet it catches up at start
//! (a run named after the current slot), serves the last run's metrics, and stops on SIGTERM.

#[path = "support/batch.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stockflight_tests::{binary, require, signal};

fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics endpoint");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// `YYYYMMDD` of a Unix day number (proleptic Gregorian, Howard Hinnant's civil_from_days).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_catches_up_at_start_and_reports_metrics() {
    let data = support::generate(20, 6, 80, 31);
    let support::Loaded {
        session,
        keyspace,
        dir,
        store,
        url: _,
    } = support::Loaded::local("batch_sched", &data).await;

    // A daily schedule: the only slot of today started at 00:00 UTC.
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut child = Command::new(binary("stockflight-batch"))
        .args([
            "--schedule-interval",
            "1d",
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .args(["--cassandra-nodes", &require("STOCKFLIGHT_CASSANDRA_NODES")])
        .args(["--cassandra-keyspace", &keyspace])
        .args(["--storage-url", &format!("file://{}", dir.display())])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stockflight-batch");

    // The metrics address is in the first log line about it.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the job logs its metrics address within 30 s");
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if event["message"] == "serving /metrics and /health" {
            break event["addr"].as_str().unwrap().to_string();
        }
    };

    // The catch-up run publishes, and the metrics say so.
    let deadline = Instant::now() + Duration::from_secs(120);
    let metrics = loop {
        let body = get(&addr, "/metrics");
        if body.contains("stockflight_batch_last_run_success 1") {
            break body;
        }
        assert!(Instant::now() < deadline, "no successful run within 120 s:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        metrics.contains(&format!("stockflight_batch_last_run_rows_scanned {}", data.rows.len())),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "stockflight_batch_last_run_table_rows{{table=\"availability_snapshot\"}} {}",
            data.rows.len()
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("stockflight_batch_runs_total{result=\"success\"} 1"),
        "{metrics}"
    );
    assert!(get(&addr, "/health").starts_with("HTTP/1.1 200"));

    let current = support::current(&store).await;
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let slots: Vec<String> = [before, after]
        .iter()
        .map(|t| format!("{}T000000Z", civil_date(t.div_euclid(86_400))))
        .collect();
    assert!(
        slots.contains(&current.run_id),
        "run id {} is not today's slot {slots:?}",
        current.run_id
    );
    support::check_snapshot(&store, &current, &data, &[(current.run_id.as_str(), &data)]).await;

    // Nothing else is due today: the job waits, and SIGTERM stops it cleanly.
    signal(child.id(), "TERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "the job did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit}");
    assert_eq!(support::current(&store).await, current, "exactly one run");

    std::fs::remove_dir_all(&dir).ok();
    session
        .query_unpaged(format!("DROP KEYSPACE {keyspace}"), ())
        .await
        .expect("drop keyspace");
}
