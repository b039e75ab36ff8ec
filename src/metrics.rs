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
        "BatchDuration": duration.as_secs_f64() * 1000.0,
        "FailedByReason": outcome.failures_by_reason(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{FailedMessage, FailureReason};
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
        assert_eq!(doc["BatchDuration"], 12.0);
        assert_eq!(doc["FailedByReason"]["invalid_ip"], 1);
    }
}
