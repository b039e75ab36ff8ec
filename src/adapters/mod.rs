//! Adapters: the core's way out to PostgreSQL and AWS. Each translates and calls; none holds
//! business rules.
//!
//! - PostgreSQL: [`database`] (where and how to connect), [`tls`], [`iam`] (IAM tokens),
//!   [`loader`] (the function's pooler-safe batch insert, the adapter of the contract's
//!   `sqs_batch::Store` port, and re-reading a rotated database secret), [`rows`] (the insert's
//!   column arrays), [`operator_db`] (the operators' sqlx pool: reports, the vault),
//!   [`lifecycle`] (migrations, monthly partitions, retention, erasure: operator commands too,
//!   on that pool).
//! - AWS: [`aws`] (SDK configuration), [`secrets`] (Secrets Manager), [`sqs`] (the queue
//!   client, provisioning, redrive), [`visibility`] (backoff of failed messages),
//!   [`cfn_response`] (the maintenance function's answer to CloudFormation).

pub mod aws;
pub mod cfn_response;
pub mod database;
pub mod iam;
pub mod lifecycle;
pub mod loader;
pub mod operator_db;
pub mod rows;
pub mod secrets;
pub mod sqs;
pub mod tls;
pub mod visibility;
