//! CloudWatch Embedded Metric Format: one JSON log line per invocation that CloudWatch turns
//! into metrics by itself, so dashboards and alarms need no agent and no extra API calls.

use std::time::Duration;

use serde_json::json;

use crate::batch::BatchOutcome;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "LoginEtl";

/// The EMF document for one invocation. `timestamp_millis` is the invocation's end (epoch ms);
/// `function_name` becomes the metrics' only dimension.
pub fn emf_line(outcome: &BatchOutcome, duration: Duration, timestamp_millis: u128, function_name: &str) -> String {
    emf_document(outcome, duration, timestamp_millis, function_name).to_string()
}

/// [`emf_line`] as a JSON value, for callers that add the invocation's context.
pub fn emf_document(
    outcome: &BatchOutcome,
    duration: Duration,
    timestamp_millis: u128,
    function_name: &str,
) -> serde_json::Value {
    let failed_retryable = outcome.failed.iter().filter(|f| f.reason.is_retryable()).count();
    json!({
        "_aws": {
            "Timestamp": timestamp_millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": [
                    {"Name": "RecordsReceived", "Unit": "Count"},
                    {"Name": "RecordsInserted", "Unit": "Count"},
                    {"Name": "RecordsDuplicate", "Unit": "Count"},
                    {"Name": "RecordsFailed", "Unit": "Count"},
                    {"Name": "RecordsFailedRetryable", "Unit": "Count"},
                    {"Name": "UnknownFieldRecords", "Unit": "Count"},
                    {"Name": "BatchDuration", "Unit": "Milliseconds"},
                ],
            }],
        },
        "FunctionName": function_name,
        "RecordsReceived": outcome.received,
        "RecordsInserted": outcome.inserted,
        "RecordsDuplicate": outcome.duplicates,
        "RecordsFailed": outcome.failed.len(),
        "RecordsFailedRetryable": failed_retryable,
        // Valid records that carried keys the function does not know: producers drifting
        // ahead of the contract (docs/contract.md). Names go to the batch's log line only.
        "UnknownFieldRecords": outcome.unknown_keys.records,
        "BatchDuration": duration.as_secs_f64() * 1000.0,
        "FailedByReason": outcome.failures_by_reason(),
    })
}

/// One EMF document per failure reason of the invocation, with `Reason` as a second
/// dimension, so a dashboard can chart failures by reason with one `SEARCH` expression.
/// Reason codes are a small fixed set (see `batch::FailureReason::code`), so the metric's
/// cardinality stays bounded. Empty when nothing failed.
pub fn failure_reason_documents(
    outcome: &BatchOutcome,
    timestamp_millis: u128,
    function_name: &str,
) -> Vec<serde_json::Value> {
    outcome
        .failures_by_reason()
        .into_iter()
        .map(|(reason, count)| {
            json!({
                "_aws": {
                    "Timestamp": timestamp_millis,
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [["FunctionName", "Reason"]],
                        "Metrics": [{"Name": "RecordsFailedByReason", "Unit": "Count"}],
                    }],
                },
                "FunctionName": function_name,
                "Reason": reason,
                "RecordsFailedByReason": count,
            })
        })
        .collect()
}

/// What the Lambda runtime knows about an invocation, added to its metrics document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationMeta<'a> {
    pub request_id: &'a str,
    pub xray_trace_id: Option<&'a str>,
    /// The first invocation of this instance (Powertools' `ColdStart` metric).
    pub cold_start: bool,
    /// The `level` the line carries: Lambda's log-level filtering drops lines below the
    /// function's `ApplicationLogLevel` (and counts a line without a level as INFO), and a
    /// dropped EMF line is a lost data point. See `telemetry::LogSettings::metrics_level`.
    pub level: &'a str,
}

/// Adds `level`, `requestId`, `xrayTraceId` and the `ColdStart` metric (1 on an instance's
/// first invocation, else 0) to an [`emf_document`].
pub fn add_invocation_meta(document: &mut serde_json::Value, meta: &InvocationMeta<'_>) {
    if let Some(metrics) = document["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array_mut() {
        metrics.push(json!({"Name": "ColdStart", "Unit": "Count"}));
    }
    if let Some(fields) = document.as_object_mut() {
        fields.insert("ColdStart".into(), json!(u8::from(meta.cold_start)));
        fields.insert("level".into(), json!(meta.level));
        fields.insert("requestId".into(), json!(meta.request_id));
        if let Some(trace_id) = meta.xray_trace_id {
            fields.insert("xrayTraceId".into(), json!(trace_id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{FailedMessage, FailureReason, UnknownKeyTally};
    use crate::message::RecordError;

    #[test]
    fn the_document_declares_every_value_it_carries() {
        let outcome = BatchOutcome {
            received: 10,
            inserted: 7,
            duplicates: 1,
            failed: vec![
                FailedMessage { message_id: "a".into(), reason: FailureReason::Invalid(RecordError::InvalidIp) },
                FailedMessage { message_id: "b".into(), reason: FailureReason::StoreFailed },
            ],
            unknown_keys: UnknownKeyTally { records: 3, ..Default::default() },
        };
        let line = emf_line(&outcome, Duration::from_millis(12), 1_795_489_200_000, "login-etl");
        assert!(!line.contains('\n'), "one line");
        let doc: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(doc["_aws"]["Timestamp"], 1_795_489_200_000u64);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "LoginEtl");
        assert_eq!(doc["FunctionName"], "login-etl");
        // Every declared metric has a numeric member of the same name, as EMF requires.
        for metric in directive["Metrics"].as_array().expect("metrics") {
            let name = metric["Name"].as_str().expect("name");
            assert!(doc[name].is_number(), "{name}");
        }
        assert_eq!(doc["RecordsInserted"], 7);
        assert_eq!(doc["RecordsFailed"], 2);
        assert_eq!(doc["RecordsFailedRetryable"], 1);
        assert_eq!(doc["UnknownFieldRecords"], 3);
        assert_eq!(doc["BatchDuration"], 12.0);
        assert_eq!(doc["FailedByReason"]["invalid_ip"], 1);
    }

    #[test]
    fn one_document_per_failure_reason() {
        let failed = |id: &str, reason| FailedMessage { message_id: id.into(), reason };
        let outcome = BatchOutcome {
            received: 3,
            inserted: 0,
            duplicates: 0,
            failed: vec![
                failed("a", FailureReason::Invalid(RecordError::InvalidIp)),
                failed("b", FailureReason::Invalid(RecordError::InvalidIp)),
                failed("c", FailureReason::StoreFailed),
            ],
            ..Default::default()
        };
        let docs = failure_reason_documents(&outcome, 5, "fn");
        assert_eq!(docs.len(), 2);
        let invalid_ip = docs.iter().find(|d| d["Reason"] == "invalid_ip").expect("invalid_ip");
        assert_eq!(invalid_ip["RecordsFailedByReason"], 2);
        assert_eq!(invalid_ip["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][1], "Reason");
        let clean = BatchOutcome { received: 1, inserted: 1, ..Default::default() };
        assert!(failure_reason_documents(&clean, 5, "fn").is_empty());
    }

    #[test]
    fn the_invocation_context_keeps_the_line_deliverable_and_traceable() {
        let outcome = BatchOutcome { received: 1, inserted: 1, ..Default::default() };
        let mut doc = emf_document(&outcome, Duration::from_millis(1), 1, "login-etl");
        let meta =
            InvocationMeta { request_id: "r-1", xray_trace_id: Some("Root=1-2-3"), cold_start: true, level: "WARN" };
        add_invocation_meta(&mut doc, &meta);
        assert_eq!(doc["level"], "WARN");
        assert_eq!(doc["requestId"], "r-1");
        assert_eq!(doc["xrayTraceId"], "Root=1-2-3");
        assert_eq!(doc["ColdStart"], 1);
        let names: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        assert!(names.contains(&"ColdStart"), "{names:?}");
    }
}
