//! `brdo bench`: a short run against its own gateway with the baseline, and
//! one against a running gateway. Only the report's structure and the
//! absence of errors are checked, never a figure (machines are shared).

use serde_json::Value;

use crate::harness::{TestGateway, brdo, text};

fn report(args: &[&str]) -> Value {
    let mut all = vec!["bench", "--duration", "2s", "--warmup", "0", "--json"];
    all.extend_from_slice(args);
    let out = brdo(&all);
    assert!(
        out.status.success(),
        "brdo bench {args:?}: {}\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).expect("the report is JSON")
}

fn assert_run(run: &Value, target: &str, scenario: &str) {
    assert_eq!(run["target"], target, "{run}");
    assert_eq!(run["scenario"], scenario, "{run}");
    assert_eq!(run["error_count"], 0, "{run}");
    assert_eq!(run["errors"], serde_json::json!({}), "{run}");
    assert!(run["ok"].as_u64().is_some_and(|n| n > 0), "{run}");
    assert!(run["throughput"].as_f64().is_some_and(|t| t > 0.0), "{run}");
    let lat = &run["latency"];
    assert_eq!(lat["count"], run["ok"], "{run}");
    let p50 = lat["p50_ms"].as_f64().expect("p50");
    let p99 = lat["p99_ms"].as_f64().expect("p99");
    let p999 = lat["p999_ms"].as_f64().expect("p99.9");
    assert!(p50 > 0.0 && p50 <= p99 && p99 <= p999, "{lat}");
}

#[test]
fn own_gateway_against_the_baseline() {
    let r = report(&["--baseline", "--concurrency", "4", "--recipients", "2"]);
    assert_run(&r["gateway"], "gateway", "submit");
    assert_run(&r["baseline"], "baseline", "submit");
    // The own gateway is a child process: its CPU and memory are known.
    let server = &r["gateway"]["server"];
    assert!(server["pid"].as_u64().is_some(), "{server}");
    assert!(
        server["peak_rss_mib"].as_f64().is_some_and(|m| m > 1.0),
        "{server}"
    );
    assert!(
        server["cpu_secs"].as_f64().is_some_and(|c| c > 0.0),
        "{server}"
    );
    // The in-process baseline cannot be told apart from the generator.
    assert!(r["baseline"]["server"].is_null());
    let ratios = &r["ratios"];
    for k in ["throughput", "p50", "p99", "p999"] {
        assert!(ratios[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {ratios}");
    }
    assert!(r["machine"]["cpus"].as_u64().is_some_and(|n| n >= 1));
}

#[test]
fn own_gateway_against_both_baselines() {
    let r = report(&["--baseline", "echo,durable", "--concurrency", "4"]);
    assert_run(&r["gateway"], "gateway", "submit");
    assert_run(&r["baseline"], "baseline", "submit");
    // Every durable echo answer was a committed row (a failed one is an
    // error in the run).
    assert_run(&r["durable"], "durable", "submit");
    assert!(r["durable"]["server"].is_null());
    for ratios in [&r["ratios"], &r["durable_ratios"]] {
        for k in ["throughput", "p50", "p99", "p999"] {
            assert!(ratios[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {ratios}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_gateway_in_open_loop_and_receive() {
    let gw = TestGateway::start().await;
    let addr = gw.addr().to_string();
    let pki = gw.pki.display().to_string();
    let pid = std::process::id().to_string();
    let before = gw.audit_size().await;
    let (addr2, pki2, pid2) = (addr.clone(), pki.clone(), pid.clone());
    let open = tokio::task::spawn_blocking(move || {
        report(&[
            "--target",
            &addr2,
            "--pki",
            &pki2,
            "--server-pid",
            &pid2,
            "--rate",
            "100",
            "--concurrency",
            "4",
        ])
    })
    .await
    .expect("bench");
    assert_run(&open["gateway"], "gateway", "submit");
    assert_eq!(open["gateway"]["mode"], "open");
    assert_eq!(open["gateway"]["offered_rate"], 100.0);
    assert!(open["baseline"].is_null() && open["ratios"].is_null());
    assert_eq!(
        open["gateway"]["server"]["pid"].as_u64(),
        Some(u64::from(std::process::id()))
    );
    // Every submit was a durable, audited write on this gateway.
    let ok = open["gateway"]["ok"].as_u64().expect("ok");
    assert!(gw.audit_size().await >= before + ok);

    let receive = tokio::task::spawn_blocking(move || {
        report(&[
            "--target",
            &addr,
            "--pki",
            &pki,
            "--scenario",
            "receive",
            "--concurrency",
            "2",
        ])
    })
    .await
    .expect("bench");
    assert_run(&receive["gateway"], "gateway", "receive");
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let out = brdo(&["bench", "--concurrency", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--concurrency"),
        "{}",
        text(&out.stderr)
    );
    let out = brdo(&["bench", "--to", "RS-MOI", "--recipients", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--recipients"),
        "{}",
        text(&out.stderr)
    );
    let out = brdo(&["bench", "--rate=-5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--rate"),
        "{}",
        text(&out.stderr)
    );
}

/// The relay scenario: two gateways of the bench's own, the single-gateway
/// run first, then the relay run with its end-to-end figures. Open loop at
/// a low rate, so every message arrives within the run's drain.
#[test]
fn relay_between_two_gateways_reports_end_to_end_figures() {
    let r = report(&["--scenario", "relay", "--rate", "40", "--concurrency", "4"]);
    assert_run(&r["baseline"], "single", "relay");
    assert_run(&r["gateway"], "relay", "relay");
    let relay = &r["relay"];
    let sent = relay["sent"].as_u64().expect("sent");
    assert!(sent > 0, "{relay}");
    assert_eq!(relay["arrived"], sent, "{relay}");
    assert_eq!(relay["missing"], 0, "{relay}");
    assert_eq!(relay["latency"]["count"], sent, "{relay}");
    let lat = &relay["latency"];
    let (p50, p99) = (
        lat["p50_ms"].as_f64().expect("p50"),
        lat["p99_ms"].as_f64().expect("p99"),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{lat}");
    assert!(
        relay["throughput"].as_f64().is_some_and(|t| t > 0.0),
        "{relay}"
    );
    assert!(
        relay["ratio_to_single"].as_f64().is_some_and(|x| x > 0.0),
        "{relay}"
    );
    // Both gateways ran in the bench's process: no server figures.
    assert!(r["gateway"]["server"].is_null());
    // The text report names the end-to-end line and the ratio.
    let out = brdo(&[
        "bench",
        "--scenario",
        "relay",
        "--rate",
        "20",
        "--concurrency",
        "2",
        "--duration",
        "1s",
        "--warmup",
        "0",
        "--quiet",
    ]);
    let t = text(&out.stdout);
    assert!(out.status.success(), "{t}{}", text(&out.stderr));
    assert!(
        t.contains("end to end (submit on A to RS-MOI's inbox on B)"),
        "{t}"
    );
    assert!(
        t.contains("relay throughput / single-gateway submit: "),
        "{t}"
    );
    // It runs its own gateways and its own baseline.
    for extra in [
        &["--baseline"][..],
        &["--target", "127.0.0.1:1", "--pki", "x"][..],
    ] {
        let mut args = vec!["bench", "--scenario", "relay"];
        args.extend_from_slice(extra);
        assert_eq!(brdo(&args).status.code(), Some(2), "{extra:?}");
    }
}
