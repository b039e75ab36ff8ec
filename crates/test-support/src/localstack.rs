//! The one LocalStack set-up: its endpoint, SDK configuration that ignores the caller's AWS
//! environment, and queues of a test's own.

use login_etl::Queue;

use crate::unique_name;

/// The LocalStack endpoint tests and benchmarks talk to (`make up` starts it).
pub fn localstack_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

/// SDK configuration for LocalStack, independent of the caller's AWS environment.
pub async fn localstack_config() -> aws_config::SdkConfig {
    let credentials = aws_credential_types::Credentials::new("test", "test", None, None, "tests");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(localstack_endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .load()
        .await
}

/// A LocalStack SQS client, checked to answer.
pub async fn sqs() -> aws_sdk_sqs::Client {
    let client = aws_sdk_sqs::Client::new(&localstack_config().await);
    if let Err(err) = client.list_queues().send().await {
        panic!(
            "LocalStack SQS is not reachable at {} (run `make up`): {}",
            localstack_endpoint(),
            aws_sdk_sqs::error::DisplayErrorContext(err)
        );
    }
    client
}

/// A new LocalStack queue without a redrive policy, whose failed messages come back after 1 s.
pub async fn queue_without_redrive(prefix: &str) -> Queue {
    let client = sqs().await;
    let url = client
        .create_queue()
        .queue_name(unique_name(prefix))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    Queue::open(client, &url).await.expect("open queue")
}
