//! The KMS adapter: the raw-data key of the local harness. In AWS the stack creates the key
//! the queues are encrypted with (template.yaml, `RawDataKey`); locally `login-etl-cli setup`
//! makes one in LocalStack's KMS under an alias, so the queues are created with SSE-KMS and a
//! send or a receive takes the same path as in AWS.

use aws_sdk_kms::Client;
use aws_sdk_kms::error::{DisplayErrorContext, SdkError};
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType};

#[derive(Debug, thiserror::Error)]
pub enum KmsKeyError {
    #[error("KMS {operation} failed")]
    Kms {
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("KMS {operation} returned no {field}")]
    Incomplete { operation: &'static str, field: &'static str },
    #[error("`{alias}` is not a KMS alias for a key of ours: it must start with `alias/` (and not `alias/aws/`)")]
    NotAnAlias { alias: String },
    #[error("the key behind `{alias}` ({arn}) is {state:?}, not enabled; enable it or pick another alias")]
    NotUsable { alias: String, arn: String, state: KeyState },
}

fn kms_error<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
) -> impl FnOnce(SdkError<E>) -> KmsKeyError {
    move |err| KmsKeyError::Kms { operation, source: DisplayErrorContext(err).to_string().into() }
}

/// The ARN of the enabled symmetric key behind `alias`, created with the alias (and yearly
/// rotation, as the stack's) if the alias does not exist yet. Running it again returns the same
/// key: setups that race both end with the alias's one key, and the loser's key is scheduled
/// for deletion.
pub async fn ensure_key(client: &Client, alias: &str, description: &str) -> Result<String, KmsKeyError> {
    if !alias.starts_with("alias/") || alias.starts_with("alias/aws/") || alias.len() <= "alias/".len() {
        return Err(KmsKeyError::NotAnAlias { alias: alias.to_owned() });
    }
    if let Some(arn) = key_behind(client, alias).await? {
        return Ok(arn);
    }
    let created = client
        .create_key()
        .description(description)
        .key_usage(KeyUsageType::EncryptDecrypt)
        .key_spec(KeySpec::SymmetricDefault)
        .send()
        .await
        .map_err(kms_error("CreateKey"))?
        .key_metadata
        .ok_or(KmsKeyError::Incomplete { operation: "CreateKey", field: "KeyMetadata" })?;
    let key_id = created.key_id;
    client.enable_key_rotation().key_id(&key_id).send().await.map_err(kms_error("EnableKeyRotation"))?;
    match client.create_alias().alias_name(alias).target_key_id(&key_id).send().await {
        Ok(_) => created.arn.ok_or(KmsKeyError::Incomplete { operation: "CreateKey", field: "Arn" }),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_already_exists_exception()) => {
            // Another setup created the alias meanwhile: use its key, drop ours.
            client
                .schedule_key_deletion()
                .key_id(&key_id)
                .pending_window_in_days(7)
                .send()
                .await
                .map_err(kms_error("ScheduleKeyDeletion"))?;
            key_behind(client, alias)
                .await?
                .ok_or(KmsKeyError::Incomplete { operation: "DescribeKey", field: "KeyMetadata" })
        }
        Err(err) => Err(kms_error("CreateAlias")(err)),
    }
}

/// The ARN of the key `alias` names, `None` if there is no such alias; an error if the key
/// cannot encrypt (disabled, pending deletion).
async fn key_behind(client: &Client, alias: &str) -> Result<Option<String>, KmsKeyError> {
    let metadata = match client.describe_key().key_id(alias).send().await {
        Ok(found) => {
            found.key_metadata.ok_or(KmsKeyError::Incomplete { operation: "DescribeKey", field: "KeyMetadata" })?
        }
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found_exception()) => return Ok(None),
        Err(err) => return Err(kms_error("DescribeKey")(err)),
    };
    let arn = metadata.arn.ok_or(KmsKeyError::Incomplete { operation: "DescribeKey", field: "Arn" })?;
    match metadata.key_state {
        Some(KeyState::Enabled) => Ok(Some(arn)),
        state => {
            Err(KmsKeyError::NotUsable { alias: alias.to_owned(), arn, state: state.unwrap_or(KeyState::Unavailable) })
        }
    }
}
