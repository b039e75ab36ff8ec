#!/usr/bin/env bash
# LocalStack ready hook (docker-compose.yml): the queue, its dead-letter queue and the secrets
# the function reads, created idempotently. Host mode gets the same from
# `login-etl-cli setup` (run by `make demo`); keep the two in step.
set -euo pipefail

awslocal sqs create-queue --queue-name login-queue-dlq --attributes MessageRetentionPeriod=1209600 >/dev/null
dlq_arn=$(awslocal sqs get-queue-attributes \
  --queue-url "$(awslocal sqs get-queue-url --queue-name login-queue-dlq --query QueueUrl --output text)" \
  --attribute-names QueueArn --query Attributes.QueueArn --output text)
awslocal sqs create-queue --queue-name login-queue --attributes "{
  \"VisibilityTimeout\": \"30\",
  \"RedrivePolicy\": \"{\\\"deadLetterTargetArn\\\":\\\"$dlq_arn\\\",\\\"maxReceiveCount\\\":\\\"5\\\"}\"
}" >/dev/null

# The function runs on the host, so the database is at 127.0.0.1 (published port).
awslocal secretsmanager describe-secret --secret-id login-etl/db >/dev/null 2>&1 ||
  awslocal secretsmanager create-secret --name login-etl/db --secret-string \
    '{"engine":"postgres","username":"postgres","password":"postgres","host":"127.0.0.1","port":5432,"dbname":"login_etl"}' >/dev/null
# DEMO ONLY: a fixed, public masking key (hex of "login-etl demo key - not a secret!").
awslocal secretsmanager describe-secret --secret-id login-etl/masking-key >/dev/null 2>&1 ||
  awslocal secretsmanager create-secret --name login-etl/masking-key --secret-string \
    6c6f67696e2d65746c2064656d6f206b6579202d206e6f742061207365637265742021 >/dev/null
echo "init-aws: login-queue, login-queue-dlq, login-etl/db, login-etl/masking-key ready"
