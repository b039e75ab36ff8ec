//! `template.yaml`'s wiring against the code: every variable the template sets on a
//! function is one the code reads, every function's environment gives the bootstrap what it
//! needs to start, and `docs/configuration.md` lists every variable the code reads with who
//! sets it in AWS. The names come from the code (`login_etl::CONFIG_VARIABLES`,
//! `LogSettings::VARIABLES`, `login_etl::RUNTIME_ENV`), which its own unit tests hold to what the
//! readers read; only what Lambda sets is written down here, from AWS's documentation.
//!
//! "Every mode": a function's environment is evaluated under every assignment of the
//! conditions its `Environment` depends on (today `UseRdsProxy`), a superset of the modes
//! `tools/python/check_template_modes.py` resolves (those conditions decide no variable).

use std::collections::{BTreeMap, BTreeSet};

use login_etl::{Config, LogSettings, RUNTIME_ENV};
use serde_json::{Value as Json, json};

const TEMPLATE: &str = include_str!("../../template.yaml");
const CONFIGURATION_DOC: &str = include_str!("../../docs/configuration.md");
/// The heading of docs/configuration.md's table of what the code reads.
const DOC_SECTION: &str = "## What the function and `login-etl-cli` read";

/// What Lambda sets in a function's environment (AWS's "Defined runtime environment
/// variables"; `AWS_LAMBDA_MAX_CONCURRENCY` on Managed Instances; `AWS_LAMBDA_LOG_LEVEL` and
/// `AWS_LAMBDA_LOG_FORMAT` with a JSON `LoggingConfig`). The template sets none of them: most
/// are reserved (Lambda refuses the function), and the rest would fight Lambda's own values.
const SET_BY_LAMBDA: [&str; 27] = [
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_LOG_LEVEL",
    "AWS_LAMBDA_LOG_FORMAT",
    "AWS_LAMBDA_MAX_CONCURRENCY",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "LANG",
    "LD_LIBRARY_PATH",
    "PATH",
    "TZ",
];

/// Values a deployer gives: the parameters without a default, the owner's secret that makes the
/// maintenance function exist (`HasMaintenanceSecret`), and a retention that schedules it.
const DEPLOY_PARAMETERS: [(&str, &str); 3] = [
    ("DbSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:login-etl/db-AbCdEf"),
    ("MaintenanceDbSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:login-etl/owner-AbCdEf"),
    ("RetentionKeepMonths", "13"),
];

#[test]
fn the_template_and_the_configuration_doc_match_the_code() {
    let problems = wiring_problems(TEMPLATE, CONFIGURATION_DOC);
    assert!(problems.is_empty(), "template.yaml / docs/configuration.md against the code:\n{}", problems.join("\n"));
}

#[test]
fn the_runtime_clients_variables_are_lambdas() {
    for name in RUNTIME_ENV {
        assert!(SET_BY_LAMBDA.contains(&name), "{name}: the runtime client needs it, and Lambda does not set it");
    }
}

/// The check can fail, and says which variable: a variable nothing reads, and one Lambda
/// reserves.
#[test]
fn a_variable_the_code_does_not_read_is_named() {
    let template = with_function_variable("          DB_POOL_SIZE: \"4\"\n          AWS_REGION: eu-west-1\n");
    let problems = wiring_problems(&template, CONFIGURATION_DOC).join("\n");
    assert!(problems.contains("LoginEtlFunction sets DB_POOL_SIZE, which the code never reads"), "{problems}");
    assert!(problems.contains("LoginEtlFunction sets AWS_REGION, which Lambda sets"), "{problems}");
}

#[test]
fn a_variable_the_function_needs_and_lacks_is_named() {
    let template = TEMPLATE.replace("          MASKING_KEY_SECRET_ID: !Ref MaskingKeySecret\n", "");
    assert_ne!(template, TEMPLATE, "the template's masking key line moved; update this test");
    let problems = wiring_problems(&template, CONFIGURATION_DOC).join("\n");
    assert!(problems.contains("UseRdsProxy=false, VerifyRdsDirectly=false) cannot start"), "{problems}");
    assert!(problems.contains("needs MASKING_KEY or MASKING_KEY_SECRET_ID"), "{problems}");
}

#[test]
fn an_undocumented_or_misattributed_variable_is_named() {
    let row = CONFIGURATION_DOC.lines().find(|line| line.starts_with("| `DB_IDLE_TIMEOUT_MS` |")).expect("its row");
    let without = CONFIGURATION_DOC.replace(&format!("{row}\n"), "");
    let problems = wiring_problems(TEMPLATE, &without).join("\n");
    assert!(
        problems.contains("DB_IDLE_TIMEOUT_MS: read by the code, missing from docs/configuration.md"),
        "{problems}"
    );

    let template = with_function_variable("          DB_IDLE_TIMEOUT_MS: \"30000\"\n");
    let problems = wiring_problems(&template, CONFIGURATION_DOC).join("\n");
    assert!(
        problems.contains("DB_IDLE_TIMEOUT_MS: docs/configuration.md says operator, but the template sets it"),
        "{problems}"
    );
}

/// The pairs that only work together are checked per mode: each half missing is named.
#[test]
fn a_tls_mode_without_its_bundle_or_layer_is_named() {
    let bundle = "          DB_CA_BUNDLE: !If [VerifyRdsDirectly, /opt/global-bundle.pem, \"\"]\n";
    assert!(TEMPLATE.contains(bundle), "the template's DB_CA_BUNDLE line moved; update this test");
    let without_bundle = TEMPLATE.replace(bundle, "          DB_CA_BUNDLE: \"\"\n");
    let problems = wiring_problems(&without_bundle, CONFIGURATION_DOC).join("\n");
    assert!(problems.contains("sets DB_SSL_MODE=verify-full without DB_CA_BUNDLE"), "{problems}");

    let mode = "          DB_SSL_MODE: !If [VerifyRdsDirectly, verify-full, \"\"]\n";
    assert!(TEMPLATE.contains(mode), "the template's DB_SSL_MODE line moved; update this test");
    let without_mode = TEMPLATE.replace(mode, "          DB_SSL_MODE: \"\"\n");
    let problems = wiring_problems(&without_mode, CONFIGURATION_DOC).join("\n");
    assert!(problems.contains("without a verifying DB_SSL_MODE: the certificate is not checked"), "{problems}");

    let layers = "      Layers: [!If [VerifyRdsDirectly, !Ref DbCaBundleLayerArn, !Ref AWS::NoValue]]\n";
    assert!(TEMPLATE.contains(layers), "the template's Layers line moved; update this test");
    let without_layer = TEMPLATE.replace(layers, "");
    let problems = wiring_problems(&without_layer, CONFIGURATION_DOC).join("\n");
    assert!(problems.contains("under /opt, and has no layer to put it there"), "{problems}");
}

/// template.yaml with `lines` added to LoginEtlFunction's variables.
fn with_function_variable(lines: &str) -> String {
    let anchor = "          MASKING_MODE: !Ref MaskingMode\n";
    assert!(TEMPLATE.contains(anchor), "the template's MASKING_MODE line moved; update this test");
    TEMPLATE.replace(anchor, &format!("{anchor}{lines}"))
}

/// Every mismatch between the template, the doc and the code, each naming its variable.
fn wiring_problems(template: &str, doc: &str) -> Vec<String> {
    let template = Template::parse(template);
    let read: BTreeSet<&str> = login_etl::CONFIG_VARIABLES.into_iter().chain(LogSettings::VARIABLES).collect();
    let mut problems = Vec::new();
    // Every variable any function's template environment sets, in some assignment.
    let mut set_by_template = BTreeSet::new();
    for function in template.functions() {
        for (assignment, variables, layers) in template.environments(&function) {
            problems.extend(tls_pair_problems(&function, &assignment, &variables, layers));
            for name in variables.keys() {
                set_by_template.insert(name.clone());
                if SET_BY_LAMBDA.contains(&name.as_str()) {
                    problems.push(format!("{function} sets {name}, which Lambda sets (and may reserve)"));
                } else if !read.contains(name.as_str()) {
                    problems.push(format!("{function} sets {name}, which the code never reads"));
                }
            }
            let lookup = |name: &str| variables.get(name).cloned().or_else(|| lambda_value(name).map(str::to_owned));
            if let Err(err) = Config::from_lookup(lookup).and_then(|config| config.require_task()) {
                problems.push(format!("{function} ({assignment}) cannot start with its template environment: {err}"));
            }
        }
    }
    let documented = documented_variables(doc);
    for name in read.iter().copied().chain(RUNTIME_ENV) {
        if !documented.contains_key(name) {
            problems.push(format!("{name}: read by the code, missing from docs/configuration.md"));
        }
    }
    for (name, setter) in &documented {
        let by_template = set_by_template.contains(name);
        let problem = match setter.as_str() {
            _ if !read.contains(name.as_str()) && !RUNTIME_ENV.contains(&name.as_str()) => {
                Some("listed in docs/configuration.md, but the code never reads it")
            }
            "template" if !by_template => Some("docs/configuration.md says template, but no function sets it"),
            "Lambda" if !SET_BY_LAMBDA.contains(&name.as_str()) => {
                Some("docs/configuration.md says Lambda, which does not set it")
            }
            "operator" if by_template => Some("docs/configuration.md says operator, but the template sets it"),
            "template" | "Lambda" | "operator" => None,
            _ => Some("docs/configuration.md's \"in AWS\" must start with template, Lambda or operator"),
        };
        if let Some(problem) = problem {
            problems.push(format!("{name}: {problem}"));
        }
    }
    problems
}

/// Variables that only work together: `DB_SSL_MODE` applies to the
/// connection straight to RDS (the secret's host), whose certificate chains to Amazon's RDS
/// CAs, in no built-in root store. So a verifying `DB_SSL_MODE` needs `DB_CA_BUNDLE` (without
/// it every connection fails `UnknownIssuer`), a `DB_CA_BUNDLE` without one is never used
/// (the connection is silently unverified), and a bundle under `/opt` needs a layer to hold it.
fn tls_pair_problems(
    function: &str,
    assignment: &str,
    variables: &BTreeMap<String, String>,
    layers: usize,
) -> Vec<String> {
    let set = |name: &str| variables.get(name).map(String::as_str).filter(|value| !value.is_empty());
    let verifying = matches!(set("DB_SSL_MODE"), Some("verify-full" | "verify-ca"));
    let mut problems = Vec::new();
    match (verifying, set("DB_CA_BUNDLE")) {
        (true, None) => problems.push(format!(
            "{function} ({assignment}) sets DB_SSL_MODE={} without DB_CA_BUNDLE: RDS's certificate would verify against nothing",
            set("DB_SSL_MODE").unwrap_or_default()
        )),
        (false, Some(bundle)) => problems.push(format!(
            "{function} ({assignment}) sets DB_CA_BUNDLE={bundle} without a verifying DB_SSL_MODE: the certificate is not checked"
        )),
        (_, Some(bundle)) if bundle.starts_with("/opt/") && layers == 0 => problems.push(format!(
            "{function} ({assignment}) sets DB_CA_BUNDLE={bundle}, under /opt, and has no layer to put it there"
        )),
        _ => {}
    }
    problems
}

/// What Lambda would give the function, for the names the code parses.
fn lambda_value(name: &str) -> Option<&'static str> {
    match name {
        "AWS_LAMBDA_MAX_CONCURRENCY" => Some("8"),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some("256"),
        "AWS_LAMBDA_LOG_LEVEL" => Some("INFO"),
        "AWS_LAMBDA_LOG_FORMAT" => Some("JSON"),
        "AWS_LAMBDA_FUNCTION_NAME" => Some("login-etl-login-etl"),
        "AWS_LAMBDA_FUNCTION_VERSION" => Some("$LATEST"),
        "AWS_LAMBDA_RUNTIME_API" => Some("127.0.0.1:9001"),
        _ if SET_BY_LAMBDA.contains(&name) => Some("set-by-lambda"),
        _ => None,
    }
}

/// docs/configuration.md's table of what the code reads: each variable and the first word of
/// its "in AWS" cell.
fn documented_variables(doc: &str) -> BTreeMap<String, String> {
    let Some(start) = doc.find(DOC_SECTION) else { return BTreeMap::new() };
    let section = &doc[start + DOC_SECTION.len()..];
    let section = section.find("\n## ").map_or(section, |end| &section[..end]);
    let mut documented = BTreeMap::new();
    for line in section.lines().filter(|line| line.starts_with("| `")) {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        let setter = cells.last().and_then(|cell| cell.split([':', ' ', '(']).next()).unwrap_or("");
        for name in cells[0].split('`').skip(1).step_by(2) {
            documented.insert(name.to_owned(), setter.to_owned());
        }
    }
    documented
}

/// template.yaml as JSON, with CloudFormation's short-form tags (`!Ref X`) in their long form
/// (`{"Ref": "X"}`).
struct Template(Json);

impl Template {
    fn parse(text: &str) -> Template {
        let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).expect("template.yaml is YAML");
        Template(long_form(yaml))
    }

    fn resources(&self) -> &serde_json::Map<String, Json> {
        self.0["Resources"].as_object().expect("Resources")
    }

    /// The Lambda functions, by logical id.
    fn functions(&self) -> Vec<String> {
        let is_function = |resource: &Json| {
            matches!(resource["Type"].as_str(), Some("AWS::Serverless::Function" | "AWS::Lambda::Function"))
        };
        self.resources().iter().filter(|(_, resource)| is_function(resource)).map(|(id, _)| id.clone()).collect()
    }

    /// The function's variables (Globals' then its own) under every assignment of the
    /// conditions they and its `Layers` depend on, each with its assignment's description and
    /// how many layers the function then has.
    fn environments(&self, function: &str) -> Vec<(String, BTreeMap<String, String>, usize)> {
        let own = &self.resources()[function]["Properties"]["Environment"];
        let global = &self.0["Globals"]["Function"]["Environment"];
        let layers = &self.resources()[function]["Properties"]["Layers"];
        let mut conditions = BTreeSet::new();
        for node in [global, own, layers] {
            conditions_in(node, &mut conditions);
        }
        let conditions: Vec<String> = conditions.into_iter().collect();
        (0..1u32 << conditions.len())
            .map(|bits| {
                let decided: BTreeMap<&str, bool> =
                    conditions.iter().enumerate().map(|(i, name)| (name.as_str(), bits & (1 << i) != 0)).collect();
                let mut variables = BTreeMap::new();
                for environment in [global, own] {
                    let environment = self.evaluate(environment, &decided, function).unwrap_or(Json::Null);
                    if let Some(Json::Object(map)) = environment.get("Variables") {
                        for (name, value) in map.clone() {
                            variables.insert(name, value.as_str().map_or_else(|| value.to_string(), str::to_owned));
                        }
                    }
                }
                let described: Vec<String> = decided.iter().map(|(name, value)| format!("{name}={value}")).collect();
                let described = if described.is_empty() { "every mode".to_owned() } else { described.join(", ") };
                let layer_count = match self.evaluate(layers, &decided, function) {
                    Some(Json::Array(items)) => items.len(),
                    _ => 0,
                };
                (described, variables, layer_count)
            })
            .collect()
    }

    /// `node` as CloudFormation would deploy it under `decided` (None: `AWS::NoValue`).
    /// Parameters take their deploy value or default; a resource's `Ref` or attribute becomes
    /// a placeholder naming it.
    fn evaluate(&self, node: &Json, decided: &BTreeMap<&str, bool>, function: &str) -> Option<Json> {
        let Json::Object(map) = node else {
            return match node {
                Json::Array(items) => {
                    Some(Json::Array(items.iter().filter_map(|item| self.evaluate(item, decided, function)).collect()))
                }
                Json::Number(n) => Some(Json::String(n.to_string())),
                Json::Bool(b) => Some(Json::String(b.to_string())),
                other => Some(other.clone()),
            };
        };
        if map.len() == 1 {
            let (key, argument) = map.iter().next().expect("one entry");
            match key.as_str() {
                "Ref" => return self.reference(argument.as_str().expect("Ref names a string"), function),
                "Fn::If" => {
                    let condition = argument[0].as_str().expect("Fn::If names a condition");
                    let branch = if decided[condition] { &argument[1] } else { &argument[2] };
                    return self.evaluate(branch, decided, function);
                }
                "Fn::Sub" => return Some(Json::String(self.substitute(argument, decided, function))),
                "Fn::GetAtt" => {
                    let part = |i: usize| argument[i].as_str().unwrap_or_default().to_ascii_lowercase();
                    return Some(json!(format!("{}.{}", part(0), part(1))));
                }
                other if other.starts_with("Fn::") => {
                    panic!("{function}'s environment uses {other}, which tests/it/wiring.rs cannot evaluate yet")
                }
                _ => {}
            }
        }
        let evaluated = map
            .iter()
            .filter_map(|(key, value)| Some((key.clone(), self.evaluate(value, decided, function)?)))
            .collect();
        Some(Json::Object(evaluated))
    }

    fn reference(&self, name: &str, function: &str) -> Option<Json> {
        if name == "AWS::NoValue" {
            return None;
        }
        if let Some((_, value)) = DEPLOY_PARAMETERS.iter().find(|(parameter, _)| *parameter == name) {
            return Some(json!(value));
        }
        if let Some(parameter) = self.0["Parameters"].get(name) {
            let default = parameter.get("Default").unwrap_or_else(|| {
                panic!(
                    "{function}'s environment uses parameter {name}, which has no default: add it to DEPLOY_PARAMETERS"
                )
            });
            return Some(json!(default.as_str().map_or_else(|| default.to_string(), str::to_owned)));
        }
        // A pseudo parameter or a resource: a placeholder of the right kind (non-empty text).
        Some(json!(format!("{}-ref", name.replace("::", "-"))))
    }

    /// `Fn::Sub`'s text with `${Name}` and `${Resource.Attribute}` replaced.
    fn substitute(&self, argument: &Json, decided: &BTreeMap<&str, bool>, function: &str) -> String {
        let (text, variables) = match argument {
            Json::String(text) => (text.as_str(), None),
            Json::Array(parts) => (parts[0].as_str().expect("Fn::Sub text"), parts[1].as_object()),
            other => panic!("{function}: Fn::Sub of {other}"),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("a closed ${…}") + start;
            let name = &rest[start + 2..end];
            let value = match variables.and_then(|variables| variables.get(name)) {
                Some(value) => self.evaluate(value, decided, function),
                None if name.contains('.') => Some(json!(name.to_ascii_lowercase())),
                None => self.reference(name, function),
            };
            out.push_str(value.as_ref().and_then(Json::as_str).unwrap_or(""));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// The names of the conditions `Fn::If` decides anywhere in `node`.
fn conditions_in(node: &Json, found: &mut BTreeSet<String>) {
    match node {
        Json::Object(map) => {
            if let Some(condition) = map.get("Fn::If").and_then(|arguments| arguments[0].as_str()) {
                found.insert(condition.to_owned());
            }
            map.values().for_each(|value| conditions_in(value, found));
        }
        Json::Array(items) => items.iter().for_each(|item| conditions_in(item, found)),
        _ => {}
    }
}

/// YAML to JSON, short-form intrinsic functions to their long form.
fn long_form(yaml: serde_yaml_ng::Value) -> Json {
    use serde_yaml_ng::Value as Yaml;
    match yaml {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(b),
        Yaml::Number(n) => serde_json::to_value(&n).unwrap_or(Json::Null),
        Yaml::String(s) => Json::String(s),
        Yaml::Sequence(items) => Json::Array(items.into_iter().map(long_form).collect()),
        Yaml::Mapping(map) => Json::Object(
            map.into_iter()
                .map(|(key, value)| (key.as_str().map_or_else(|| format!("{key:?}"), str::to_owned), long_form(value)))
                .collect(),
        ),
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = long_form(tagged.value);
            match name {
                "Ref" | "Condition" => json!({ name: value }),
                // `!GetAtt Resource.Attribute` is `Fn::GetAtt: [Resource, Attribute]`.
                "GetAtt" => match value {
                    Json::String(text) => {
                        let (resource, attribute) = text.split_once('.').unwrap_or((&text, ""));
                        json!({ "Fn::GetAtt": [resource, attribute] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                _ => json!({ format!("Fn::{name}"): value }),
            }
        }
    }
}
