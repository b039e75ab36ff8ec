//! CloudWatch Embedded Metric Format: JSON log lines that CloudWatch turns into metrics by
//! itself, so dashboards and alarms need no agent and no extra API calls.
//!
//! Each document is a typed value: the directive's metric list is derived from the same
//! table that fills the values, so a declared metric always has its value (EMF drops a
//! document whose declared metric is missing), and the invocation's context (`level`,
//! `requestId`, `xrayTraceId`) is added to every document of an invocation in one place.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "LoginEtl";

/// What one invocation did, counted: the input of its EMF documents. The caller derives it
/// from its outcome, so this module knows nothing of how a batch is planned or stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InvocationCounts {
    pub received: usize,
    pub inserted: u64,
    pub duplicates: u64,
    pub failed: usize,
    pub failed_retryable: usize,
    /// Valid records that carried keys the function does not know: producers drifting ahead
    /// of the schema (docs/schema.md). Names go to the batch's log line only.
    pub unknown_field_records: usize,
    /// Failed records by reason code (a small fixed set, so the metric's cardinality stays
    /// bounded): `sqs_batch::Outcome::failures_by_code`. Reported as the `Reason` dimension.
    pub failures_by_code: BTreeMap<Cow<'static, str>, usize>,
    pub duration: Duration,
}

/// What the Lambda runtime knows about an invocation, carried by each of its documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvocationMeta<'a> {
    #[serde(rename = "requestId")]
    pub request_id: &'a str,
    #[serde(rename = "xrayTraceId", skip_serializing_if = "Option::is_none")]
    pub xray_trace_id: Option<&'a str>,
    /// The first invocation of this instance (Powertools' `ColdStart` metric).
    #[serde(skip)]
    pub cold_start: bool,
    /// The `level` the line carries: Lambda's log-level filtering drops lines below the
    /// function's `ApplicationLogLevel` (and counts a line without a level as INFO), and a
    /// dropped EMF line is a lost data point. See `telemetry::LogSettings::metrics_level`.
    pub level: &'a str,
}

/// A metric as the directive declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
struct Metric {
    #[serde(rename = "Name")]
    name: &'static str,
    #[serde(rename = "Unit")]
    unit: &'static str,
}

#[derive(Debug, Serialize)]
struct Directive {
    #[serde(rename = "Namespace")]
    namespace: &'static str,
    #[serde(rename = "Dimensions")]
    dimensions: [&'static [&'static str]; 1],
    #[serde(rename = "Metrics")]
    metrics: Vec<Metric>,
}

#[derive(Debug, Serialize)]
struct Aws {
    #[serde(rename = "Timestamp")]
    timestamp: u128,
    #[serde(rename = "CloudWatchMetrics")]
    cloud_watch_metrics: [Directive; 1],
}

/// A number EMF reads as a metric value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
enum Value {
    Count(u64),
    Milliseconds(f64),
}

/// One EMF document: the directive, its dimensions' values, its metrics' values and the
/// invocation's context.
#[derive(Debug, Serialize)]
pub struct EmfDocument<'a> {
    #[serde(rename = "_aws")]
    aws: Aws,
    #[serde(rename = "FunctionName")]
    function_name: &'a str,
    #[serde(rename = "Reason", skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    /// The metrics' values, by the names the directive declares.
    #[serde(flatten)]
    values: BTreeMap<&'static str, Value>,
    /// Not a metric: the failed records by reason, for reading the line itself.
    #[serde(rename = "FailedByReason", skip_serializing_if = "Option::is_none")]
    failed_by_reason: Option<&'a BTreeMap<Cow<'static, str>, usize>>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    meta: Option<&'a InvocationMeta<'a>>,
}

impl EmfDocument<'_> {
    /// The document as one line of JSON (no newline).
    pub fn to_line(&self) -> String {
        // Maps with string keys, strings and numbers: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn document<'a>(
    timestamp_millis: u128,
    function_name: &'a str,
    reason: Option<&'a str>,
    metrics: &[(&'static str, Value)],
    meta: Option<&'a InvocationMeta<'a>>,
) -> EmfDocument<'a> {
    let dimensions: &'static [&'static str] =
        if reason.is_some() { &["FunctionName", "Reason"] } else { &["FunctionName"] };
    let declared = metrics
        .iter()
        .map(|(name, value)| Metric {
            name,
            unit: match value {
                Value::Count(_) => "Count",
                Value::Milliseconds(_) => "Milliseconds",
            },
        })
        .collect();
    EmfDocument {
        aws: Aws {
            timestamp: timestamp_millis,
            cloud_watch_metrics: [Directive { namespace: NAMESPACE, dimensions: [dimensions], metrics: declared }],
        },
        function_name,
        reason,
        values: metrics.iter().copied().collect(),
        failed_by_reason: None,
        meta,
    }
}

/// An invocation's documents: its own (every count, the batch's duration, `ColdStart` when the
/// runtime's context is given), then one per failure reason with `Reason` as a second
/// dimension, so a dashboard can chart failures by reason with one `SEARCH` expression.
/// `timestamp_millis` is the invocation's end (epoch ms); `function_name` the metrics'
/// dimension.
pub fn invocation_documents<'a>(
    counts: &'a InvocationCounts,
    timestamp_millis: u128,
    function_name: &'a str,
    meta: Option<&'a InvocationMeta<'a>>,
) -> Vec<EmfDocument<'a>> {
    let count = |n: usize| Value::Count(n as u64);
    let mut metrics = vec![
        ("RecordsReceived", count(counts.received)),
        ("RecordsInserted", Value::Count(counts.inserted)),
        ("RecordsDuplicate", Value::Count(counts.duplicates)),
        ("RecordsFailed", count(counts.failed)),
        ("RecordsFailedRetryable", count(counts.failed_retryable)),
        ("UnknownFieldRecords", count(counts.unknown_field_records)),
        ("BatchDuration", Value::Milliseconds(counts.duration.as_secs_f64() * 1000.0)),
    ];
    if let Some(meta) = meta {
        metrics.push(("ColdStart", Value::Count(u64::from(meta.cold_start))));
    }
    let mut invocation = document(timestamp_millis, function_name, None, &metrics, meta);
    invocation.failed_by_reason = Some(&counts.failures_by_code);
    let mut documents = vec![invocation];
    for (code, failed) in &counts.failures_by_code {
        let metrics = [("RecordsFailedByReason", count(*failed))];
        documents.push(document(timestamp_millis, function_name, Some(code.as_ref()), &metrics, meta));
    }
    documents
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts() -> InvocationCounts {
        InvocationCounts {
            received: 10,
            inserted: 7,
            duplicates: 1,
            failed: 3,
            failed_retryable: 1,
            unknown_field_records: 3,
            failures_by_code: BTreeMap::from([("invalid_ip".into(), 2), ("store_failed".into(), 1)]),
            duration: Duration::from_millis(12),
        }
    }

    fn parsed(document: &EmfDocument<'_>) -> serde_json::Value {
        let line = document.to_line();
        assert!(!line.contains('\n'), "one line");
        serde_json::from_str(&line).expect("json")
    }

    #[test]
    fn the_document_declares_every_value_it_carries() {
        let counts = counts();
        let documents = invocation_documents(&counts, 1_795_489_200_000, "login-etl", None);
        let doc = parsed(&documents[0]);
        assert_eq!(doc["_aws"]["Timestamp"], 1_795_489_200_000u64);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "LoginEtl");
        assert_eq!(directive["Dimensions"], serde_json::json!([["FunctionName"]]));
        assert_eq!(doc["FunctionName"], "login-etl");
        // Every declared metric has a numeric member of the same name, as EMF requires.
        for metric in directive["Metrics"].as_array().expect("metrics") {
            let name = metric["Name"].as_str().expect("name");
            assert!(doc[name].is_number(), "{name}");
        }
        assert_eq!(doc["RecordsInserted"], 7);
        assert_eq!(doc["RecordsFailed"], 3);
        assert_eq!(doc["RecordsFailedRetryable"], 1);
        assert_eq!(doc["UnknownFieldRecords"], 3);
        assert_eq!(doc["BatchDuration"], 12.0);
        assert_eq!(doc["FailedByReason"]["invalid_ip"], 2);
        assert!(doc.get("ColdStart").is_none() && doc.get("requestId").is_none(), "no runtime context given");
    }

    #[test]
    fn one_document_per_failure_reason() {
        let counts = counts();
        let documents = invocation_documents(&counts, 5, "fn", None);
        assert_eq!(documents.len(), 3);
        let by_reason: Vec<serde_json::Value> = documents[1..].iter().map(parsed).collect();
        let invalid_ip = by_reason.iter().find(|d| d["Reason"] == "invalid_ip").expect("invalid_ip");
        assert_eq!(invalid_ip["RecordsFailedByReason"], 2);
        assert_eq!(invalid_ip["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][1], "Reason");
        assert_eq!(invalid_ip["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "RecordsFailedByReason");
        assert!(invalid_ip.get("RecordsReceived").is_none(), "only its own metric");
        let clean = InvocationCounts { received: 1, inserted: 1, ..Default::default() };
        assert_eq!(invocation_documents(&clean, 5, "fn", None).len(), 1);
    }

    #[test]
    fn the_invocation_context_is_on_every_document_of_the_invocation() {
        let counts = counts();
        let meta =
            InvocationMeta { request_id: "r-1", xray_trace_id: Some("Root=1-2-3"), cold_start: true, level: "WARN" };
        let documents = invocation_documents(&counts, 1, "login-etl", Some(&meta));
        for doc in documents.iter().map(parsed) {
            assert_eq!(doc["level"], "WARN");
            assert_eq!(doc["requestId"], "r-1");
            assert_eq!(doc["xrayTraceId"], "Root=1-2-3");
        }
        let doc = parsed(&documents[0]);
        assert_eq!(doc["ColdStart"], 1);
        let names: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        assert!(names.contains(&"ColdStart"), "{names:?}");
        let warm = InvocationMeta { cold_start: false, xray_trace_id: None, ..meta };
        let doc = parsed(&invocation_documents(&counts, 1, "login-etl", Some(&warm))[0]);
        assert_eq!(doc["ColdStart"], 0);
        assert!(doc.get("xrayTraceId").is_none());
    }
}
