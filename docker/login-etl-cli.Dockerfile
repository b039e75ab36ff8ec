# login-etl-cli in an image, for docker-compose.yml's one-shot `setup` service.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# .sqlx/ holds the checked queries' metadata: no database is needed to build.
RUN SQLX_OFFLINE=true cargo build --release --locked --bin login-etl-cli

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/login-etl-cli /usr/local/bin/login-etl-cli
ENTRYPOINT ["login-etl-cli"]
