//! The benchmarks' floor function (benches/runtime_api.rs): a Rust Lambda function that lets the
//! runtime parse the `SqsEvent` and answers an empty partial batch response, doing nothing
//! else. What is left of login-etl's time once this and the database's own time are taken
//! away is what login-etl itself adds.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run_concurrent(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        std::hint::black_box(&event.payload);
        Ok::<_, Error>(SqsBatchResponse::default())
    }))
    .await
}
