# login-etl-cli in an image, for docker-compose.yml's one-shot `setup` service.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# .sqlx/ holds the checked queries' metadata: no database is needed to build.
RUN SQLX_OFFLINE=true cargo build --release --locked --bin login-etl-cli

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# Amazon's RDS CA bundle, for `migrate` and the other database commands with
# sslmode=verify-full inside the VPC: DB_CA_BUNDLE=/etc/ssl/certs/rds-global-bundle.pem
# (docs/deploy.md, step 4). Fetched at build time: AWS adds CAs to it.
ADD https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
RUN chmod 644 /etc/ssl/certs/rds-global-bundle.pem
COPY --from=build /src/target/release/login-etl-cli /usr/local/bin/login-etl-cli
ENTRYPOINT ["login-etl-cli"]
