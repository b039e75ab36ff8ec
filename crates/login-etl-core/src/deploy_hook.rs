//! The stack's schema migration as a CloudFormation custom resource: what the maintenance
//! function is asked (a scheduled run, or CloudFormation's Create/Update/Delete of the
//! `SchemaMigration` resource) and what it answers. Pure: the adapter runs the migration, and
//! PUTs [`CustomResourceResponse::to_body`] to the request's `ResponseURL` (the cfn-response
//! protocol: a presigned S3 URL).
//!
//! The rules:
//! - Create and Update migrate; Delete answers SUCCESS and touches nothing (the schema and
//!   its rows outlive the stack, as the retained queues and keys do).
//! - The answer keeps the resource's physical id: a changed id on Update would make
//!   CloudFormation replace the resource and then Delete the old one.
//! - A failure answers FAILED with its reason, cut to what CloudFormation shows; the reason
//!   is the caller's text, which must carry no secret (errors of this crate's adapters name
//!   secrets by id and users by name, never a password).

use serde::{Deserialize, Serialize};

/// The physical id of the schema resource when CloudFormation has not given one yet (Create).
/// One database per stack, so one id per stack is enough; CloudFormation prefixes nothing.
pub const SCHEMA_RESOURCE_ID: &str = "login-etl-schema";

/// CloudFormation shows at most this many bytes of a reason; the whole response must stay
/// under 4 KiB.
pub const MAX_REASON_BYTES: usize = 1024;

/// What one invocation of the maintenance function is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaintenanceEvent {
    /// EventBridge Scheduler's event (or any other without `RequestType`): partitions ahead
    /// and retention.
    Scheduled,
    /// CloudFormation's request for the `SchemaMigration` custom resource.
    CustomResource(CustomResourceRequest),
}

/// An event that says it is CloudFormation's (it has `RequestType`) but cannot be answered as
/// one: without its `ResponseURL` and ids there is nowhere to answer, so the invocation fails.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MaintenanceEventError {
    #[error("the maintenance function's event is not JSON: {0}")]
    NotJson(String),
    #[error("a CloudFormation custom resource request without what an answer needs: {0}")]
    InvalidCustomResourceRequest(String),
}

/// CloudFormation's custom resource request: the fields the answer echoes, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomResourceRequest {
    pub request_type: RequestType,
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    /// Absent on Create.
    #[serde(default)]
    pub physical_resource_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

/// What a request asks of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaAction {
    /// Apply `migrations/` as the owner (Create and Update: every deploy of the stack that
    /// changes the resource's properties, the function's code version among them).
    Migrate,
    /// Nothing: a Delete leaves the schema and its data where they are.
    LeaveAlone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Success,
    Failed,
}

/// The document PUT to the `ResponseURL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomResourceResponse {
    pub status: Status,
    pub reason: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
}

impl MaintenanceEvent {
    /// Tells CloudFormation's request (an object with `RequestType`) from a scheduled event.
    pub fn parse(event: &[u8]) -> Result<MaintenanceEvent, MaintenanceEventError> {
        let value: serde_json::Value =
            serde_json::from_slice(event).map_err(|err| MaintenanceEventError::NotJson(err.to_string()))?;
        if value.get("RequestType").is_none() {
            return Ok(MaintenanceEvent::Scheduled);
        }
        let request: CustomResourceRequest = serde_json::from_value(value)
            .map_err(|err| MaintenanceEventError::InvalidCustomResourceRequest(err.to_string()))?;
        if request.response_url.is_empty() {
            return Err(MaintenanceEventError::InvalidCustomResourceRequest("ResponseURL is empty".into()));
        }
        Ok(MaintenanceEvent::CustomResource(request))
    }
}

impl CustomResourceRequest {
    pub fn action(&self) -> SchemaAction {
        match self.request_type {
            RequestType::Create | RequestType::Update => SchemaAction::Migrate,
            RequestType::Delete => SchemaAction::LeaveAlone,
        }
    }

    /// The answer to this request once its action ended with `outcome` (`Err`: the reason,
    /// which must carry no secret).
    pub fn answer(&self, outcome: Result<&str, &str>) -> CustomResourceResponse {
        let (status, reason) = match outcome {
            Ok(reason) => (Status::Success, reason),
            Err(reason) => (Status::Failed, reason),
        };
        CustomResourceResponse {
            status,
            reason: truncated(reason, MAX_REASON_BYTES),
            // Create has none yet; a failed Create still needs one (CloudFormation then sends
            // a Delete with it, which leaves everything alone).
            physical_resource_id: self.physical_resource_id.clone().unwrap_or_else(|| SCHEMA_RESOURCE_ID.to_owned()),
            stack_id: self.stack_id.clone(),
            request_id: self.request_id.clone(),
            logical_resource_id: self.logical_resource_id.clone(),
        }
    }
}

impl CustomResourceResponse {
    /// The JSON body of the PUT.
    pub fn to_body(&self) -> Vec<u8> {
        // A struct of strings and a unit enum: serialising it cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// An error and its causes as one reason, each cause once: drivers often repeat their
/// source's text in their own (`…: database "x" does not exist: database "x" does not exist`).
pub fn reason_from_chain<'a>(chain: impl IntoIterator<Item = &'a str>) -> String {
    let mut reason = String::new();
    for cause in chain {
        if cause.is_empty() || reason.contains(cause) {
            continue;
        }
        if !reason.is_empty() {
            reason.push_str(": ");
        }
        reason.push_str(cause);
    }
    reason
}

/// `text` cut to at most `max` bytes on a character boundary, marked when cut.
fn truncated(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    const MARK: &str = " …";
    let mut end = max - MARK.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(request_type: &str, physical: Option<&str>) -> Vec<u8> {
        let mut value = serde_json::json!({
            "RequestType": request_type,
            "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:s-login-etl-maintenance",
            "ResponseURL": "https://cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com/x?X-Amz-Signature=abc",
            "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/1b2c",
            "RequestId": "5d6e",
            "LogicalResourceId": "SchemaMigration",
            "ResourceType": "Custom::LoginEtlSchema",
            "ResourceProperties": {"ServiceToken": "arn:…", "CodeVersion": "arn:…:3"}
        });
        if let Some(id) = physical {
            value["PhysicalResourceId"] = id.into();
            value["OldResourceProperties"] = serde_json::json!({"CodeVersion": "arn:…:2"});
        }
        serde_json::to_vec(&value).expect("json")
    }

    fn custom(event: &[u8]) -> CustomResourceRequest {
        match MaintenanceEvent::parse(event).expect("parses") {
            MaintenanceEvent::CustomResource(request) => request,
            other => panic!("not a custom resource request: {other:?}"),
        }
    }

    #[test]
    fn a_scheduled_event_is_not_a_custom_resource_request() {
        let scheduled = br#"{"version":"0","detail-type":"Scheduled Event","source":"aws.scheduler","detail":{}}"#;
        assert_eq!(MaintenanceEvent::parse(scheduled), Ok(MaintenanceEvent::Scheduled));
        assert_eq!(MaintenanceEvent::parse(b"{}"), Ok(MaintenanceEvent::Scheduled));
        assert!(matches!(MaintenanceEvent::parse(b"not json"), Err(MaintenanceEventError::NotJson(_))));
    }

    #[test]
    fn create_and_update_migrate_and_delete_leaves_the_data_alone() {
        assert_eq!(custom(&request("Create", None)).action(), SchemaAction::Migrate);
        assert_eq!(custom(&request("Update", Some("login-etl-schema"))).action(), SchemaAction::Migrate);
        assert_eq!(custom(&request("Delete", Some("login-etl-schema"))).action(), SchemaAction::LeaveAlone);
    }

    #[test]
    fn the_answer_echoes_the_request_and_keeps_the_physical_id() {
        let create = custom(&request("Create", None));
        let answer: serde_json::Value =
            serde_json::from_slice(&create.answer(Ok("migrations applied")).to_body()).expect("json");
        assert_eq!(
            answer,
            serde_json::json!({
                "Status": "SUCCESS",
                "Reason": "migrations applied",
                "PhysicalResourceId": SCHEMA_RESOURCE_ID,
                "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/s/1b2c",
                "RequestId": "5d6e",
                "LogicalResourceId": "SchemaMigration",
            })
        );
        let update = custom(&request("Update", Some("an-older-id")));
        assert_eq!(update.answer(Ok("")).physical_resource_id, "an-older-id", "an Update that changes the id replaces");
        let failed = update.answer(Err("connecting to the database: password authentication failed for user \"o\""));
        assert_eq!(failed.status, Status::Failed);
        assert!(failed.reason.contains("password authentication failed"), "{}", failed.reason);
        assert_eq!(failed.physical_resource_id, "an-older-id");
    }

    #[test]
    fn a_cause_already_told_is_not_repeated() {
        let chain = [
            "applying the migrations failed",
            "while executing migrations: error returned from database: database \"c\" does not exist",
            "error returned from database: database \"c\" does not exist",
            "database \"c\" does not exist",
        ];
        assert_eq!(
            reason_from_chain(chain),
            "applying the migrations failed: while executing migrations: error returned from database: database \"c\" does not exist"
        );
    }

    #[test]
    fn a_long_reason_is_cut_on_a_character_boundary() {
        let long = "é".repeat(2000);
        let reason = custom(&request("Create", None)).answer(Err(&long)).reason;
        assert!(reason.len() <= MAX_REASON_BYTES, "{}", reason.len());
        assert!(reason.ends_with(" …") && reason.starts_with("éé"));
    }

    #[test]
    fn a_request_without_what_an_answer_needs_is_an_error_not_a_scheduled_run() {
        for field in ["ResponseURL", "StackId", "RequestId", "LogicalResourceId"] {
            let mut value: serde_json::Value = serde_json::from_slice(&request("Create", None)).expect("json");
            value.as_object_mut().expect("object").remove(field);
            let err = MaintenanceEvent::parse(&serde_json::to_vec(&value).expect("json")).expect_err(field);
            assert!(err.to_string().contains(field), "{err}");
        }
        let mut value: serde_json::Value = serde_json::from_slice(&request("Create", None)).expect("json");
        value["RequestType"] = "Replace".into();
        let err = MaintenanceEvent::parse(&serde_json::to_vec(&value).expect("json")).expect_err("unknown type");
        assert!(matches!(err, MaintenanceEventError::InvalidCustomResourceRequest(_)), "{err}");
        value["RequestType"] = "Create".into();
        value["ResponseURL"] = "".into();
        assert!(MaintenanceEvent::parse(&serde_json::to_vec(&value).expect("json")).is_err());
    }
}
