//! The published JSON Schemas (`schema/events/`) stay true to the events we
//! write: one schema per event type, whose fields and types match what the
//! serialised event carries.

use chrono::{TimeZone, Utc};
use igny8_domain::DomainEvent;
use igny8_domain::billing::AccountEvent;
use igny8_domain::jobs::{JobEvent, Phase};
use igny8_domain::planner::{
    ClusterSummary, Intent, KeywordChange, KeywordData, SectorKeywordsEvent,
};
use igny8_domain::tenancy::{
    ApiKeyEvent, IntegrationEvent, LoginEvent, Role, SessionEvent, TenantEvent, UserEvent,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use uuid::Uuid;

struct Sample {
    aggregate: &'static str,
    event_type: &'static str,
    version: &'static str,
    payload: Value,
    /// Deserialise an example into the event type; its type name.
    parse: fn(&Value) -> Option<&'static str>,
}

fn parse_as<E: DomainEvent>(v: &Value) -> Option<&'static str> {
    serde_json::from_value::<E>(v.clone())
        .ok()
        .map(|e| e.event_type())
}

fn sample<E: DomainEvent>(aggregate: &'static str, e: E) -> Sample {
    Sample {
        aggregate,
        event_type: e.event_type(),
        version: e.event_version(),
        payload: serde_json::to_value(&e).unwrap(),
        parse: parse_as::<E>,
    }
}

/// One sample of every event type we write (optional fields both set and unset).
fn samples() -> Vec<Sample> {
    let id = Uuid::from_u128(1);
    let at = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
    let s = String::from;
    vec![
        sample("account", AccountEvent::AccountOpened { name: s("Acme") }),
        sample(
            "account",
            AccountEvent::CreditsGranted {
                amount: 10,
                balance_after: 10,
                reason: s("plan"),
            },
        ),
        sample(
            "account",
            AccountEvent::CreditsSpent {
                amount: 4,
                balance_after: 6,
                reason: s(""),
            },
        ),
        sample(
            "account",
            AccountEvent::CreditsReserved {
                reservation_id: s("j"),
                amount: 3,
                reserved_after: 3,
                reason: s("job"),
            },
        ),
        sample(
            "account",
            AccountEvent::CreditsCaptured {
                reservation_id: s("j"),
                amount: 2,
                released: 1,
                balance_after: 4,
                reserved_after: 0,
            },
        ),
        sample(
            "account",
            AccountEvent::ReservationReleased {
                reservation_id: s("j"),
                amount: 3,
                reserved_after: 0,
                reason: s("x"),
            },
        ),
        sample(
            "account",
            AccountEvent::SubscriptionStarted {
                plan: s("free"),
                period_start: at,
                period_end: at,
            },
        ),
        sample(
            "login",
            LoginEvent::LoginClaimed {
                user_id: id,
                account_id: id,
            },
        ),
        sample("login", LoginEvent::LoginReleased { user_id: id }),
        sample("login", LoginEvent::LoginFailed { user_id: id }),
        sample(
            "user",
            UserEvent::UserRegistered {
                account_id: id,
                email: s("a@b.io"),
                name: s("a"),
                role: Role::Owner,
                credential: s("v1.k.0.0"),
            },
        ),
        sample("user", UserEvent::UserRoleChanged { role: Role::Editor }),
        sample("user", UserEvent::UserRenamed { name: s("b") }),
        sample("user", UserEvent::UserSitesSet { site_ids: vec![id] }),
        sample(
            "user",
            UserEvent::UserCredentialChanged {
                credential: s("v1.k.0.0"),
            },
        ),
        sample("user", UserEvent::UserDeleted {}),
        sample(
            "tenant",
            TenantEvent::TenantCreated {
                name: s("A"),
                slug: s("a"),
                owner_id: id,
                plan: s("free"),
                max_sites: Some(1),
            },
        ),
        sample(
            "tenant",
            TenantEvent::PlanChanged {
                plan: s("scale"),
                max_sites: None,
            },
        ),
        sample(
            "tenant",
            TenantEvent::SiteCreated {
                site_id: id,
                name: s("B"),
                slug: s("b"),
                industry: None,
                domain: Some(s("https://b.io")),
            },
        ),
        sample(
            "tenant",
            TenantEvent::SiteUpdated {
                site_id: id,
                name: s("B"),
                slug: s("b"),
                industry: Some(s("x")),
                domain: None,
                status: s("active"),
                wp_url: None,
                wp_username: Some(s("u")),
                wp_credential: Some(s("v1.k.0.0")),
            },
        ),
        sample(
            "tenant",
            TenantEvent::SiteDeleted {
                site_id: id,
                sector_ids: vec![id],
            },
        ),
        sample(
            "tenant",
            TenantEvent::SectorCreated {
                site_id: id,
                sector_id: id,
                name: s("S"),
                slug: s("s"),
            },
        ),
        sample(
            "tenant",
            TenantEvent::SectorUpdated {
                site_id: id,
                sector_id: id,
                name: s("S"),
                status: s("inactive"),
            },
        ),
        sample(
            "tenant",
            TenantEvent::SectorDeleted {
                site_id: id,
                sector_id: id,
            },
        ),
        sample(
            "session",
            SessionEvent::SessionStarted {
                user_id: id,
                account_id: id,
                method: s("password"),
            },
        ),
        sample("session", SessionEvent::SessionRefreshed { generation: 1 }),
        sample(
            "session",
            SessionEvent::SessionRevoked {
                reason: s("logout"),
            },
        ),
        sample(
            "api_key",
            ApiKeyEvent::ApiKeyCreated {
                account_id: id,
                name: s("k"),
                role: Role::Viewer,
                site_ids: vec![],
                prefix: s("igny8_x"),
                secret_hash: s("00"),
            },
        ),
        sample("api_key", ApiKeyEvent::ApiKeyUsed { at }),
        sample(
            "integration",
            IntegrationEvent::IntegrationConfigured {
                account_id: id,
                provider: s("openai"),
                base_url: s("https://api.openai.com/v1"),
                embedding_model: s("text-embedding-3-small"),
                chat_model: s("gpt-4o-mini"),
                api_key_sealed: Some(s("k1:00:00")),
                key_hint: Some(s("abcd")),
            },
        ),
        sample("integration", IntegrationEvent::IntegrationRemoved {}),
        sample(
            "job",
            JobEvent::JobCreated {
                account_id: id,
                kind: s("auto_cluster"),
                input: serde_json::json!({"sector_id": id}),
                reserved: 10_000,
            },
        ),
        sample(
            "job",
            JobEvent::JobStarted {
                attempt: 1,
                worker: s("w1"),
            },
        ),
        sample(
            "job",
            JobEvent::JobProgressed {
                phase: Phase::AiCall,
                percentage: 40,
                message: s("m"),
                tokens: 0,
                cost_usd_micros: 0,
            },
        ),
        sample(
            "job",
            JobEvent::JobSucceeded {
                result: serde_json::json!({"clusters": 3}),
                charged: 10_000,
            },
        ),
        sample(
            "job",
            JobEvent::JobFailed {
                error: s("x"),
                attempt: 1,
            },
        ),
        sample("job", JobEvent::JobCancelled {}),
        sample(
            "sector_keywords",
            SectorKeywordsEvent::KeywordSetOpened {
                account_id: id,
                site_id: id,
            },
        ),
        sample(
            "sector_keywords",
            SectorKeywordsEvent::KeywordsAdded {
                keywords: vec![KeywordData {
                    id,
                    keyword: s("best crm"),
                    volume: 10,
                    difficulty: 5,
                    intent: Some(Intent::Commercial),
                    cpc: Some(1.5),
                }],
                source: s("import"),
                chunk: 1,
                chunks: 1,
            },
        ),
        sample(
            "sector_keywords",
            SectorKeywordsEvent::KeywordUpdated {
                id,
                change: KeywordChange {
                    volume: Some(3),
                    ..Default::default()
                },
            },
        ),
        sample(
            "sector_keywords",
            SectorKeywordsEvent::KeywordsDeleted { ids: vec![id] },
        ),
        sample(
            "sector_keywords",
            SectorKeywordsEvent::ClusterRenamed {
                cluster_id: id,
                name: s("n"),
            },
        ),
        sample(
            "sector_keywords",
            SectorKeywordsEvent::ClustersMerged {
                into: id,
                from: vec![id],
            },
        ),
        sample(
            "sector_keywords",
            SectorKeywordsEvent::KeywordsMoved {
                keyword_ids: vec![id],
                cluster_id: None,
            },
        ),
        sample(
            "sector_keywords",
            SectorKeywordsEvent::ClusterSplit {
                from: id,
                new_cluster_id: id,
                name: s("n"),
                keyword_ids: vec![id],
            },
        ),
        sample(
            "sector_keywords",
            SectorKeywordsEvent::ClusterDeleted { cluster_id: id },
        ),
        sample(
            "sector_keywords",
            SectorKeywordsEvent::ClustersAssigned {
                run_id: id,
                clusters: vec![ClusterSummary {
                    cluster_id: id,
                    name: s("best crm"),
                    description: s("1 keywords around best crm"),
                    keyword_ids: vec![id],
                    total_volume: 10,
                    avg_difficulty: 5.0,
                    dominant_intent: None,
                }],
                chunk: 1,
                chunks: 1,
            },
        ),
        sample("api_key", ApiKeyEvent::ApiKeyRevoked {}),
    ]
}

fn schema_for(aggregate: &str, event_type: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../schema/events")
        .join(aggregate)
        .join(format!("{event_type}.schema.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("missing schema {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", path.display()))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

/// The schema's type for a field accepts the JSON type written.
fn accepts(declared: &Value, written: &str) -> bool {
    match declared {
        Value::String(t) => t == written,
        Value::Array(ts) => ts.iter().any(|t| t == written),
        _ => false,
    }
}

#[test]
fn every_event_type_has_a_matching_schema() {
    for sample in samples() {
        let t = sample.event_type;
        let schema = schema_for(sample.aggregate, t);
        assert_eq!(schema["x-igny8"]["event_type"], t);
        assert_eq!(schema["x-igny8"]["aggregate_type"], sample.aggregate);
        assert_eq!(schema["x-igny8"]["event_version"], sample.version);
        assert_eq!(
            schema["required"],
            serde_json::json!([t]),
            "{t}: externally tagged"
        );
        let inner = sample.payload[t]
            .as_object()
            .unwrap_or_else(|| panic!("{t}: payload is {{\"{t}\": {{...}}}}"));
        let declared = &schema["properties"][t];
        let required: BTreeSet<&str> = declared["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let written: BTreeSet<&str> = inner.keys().map(String::as_str).collect();
        assert_eq!(
            required, written,
            "{t}: schema's required fields = fields written"
        );
        for (k, v) in inner {
            assert!(
                accepts(&declared["properties"][k]["type"], json_type(v)),
                "{t}.{k}: type {} not accepted by the schema",
                json_type(v)
            );
        }
        // The schema's own examples deserialise into the event type.
        for ex in schema["examples"].as_array().into_iter().flatten() {
            assert_eq!((sample.parse)(ex), Some(t), "{t}: example {ex}");
        }
    }
}

#[test]
fn every_schema_file_describes_an_event_we_write() {
    let sampled: BTreeSet<(String, String)> = samples()
        .iter()
        .map(|s| (s.aggregate.to_string(), s.event_type.to_string()))
        .collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema/events");
    let mut files = BTreeSet::new();
    for dir in std::fs::read_dir(&root).unwrap().flatten() {
        if !dir.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().to_string();
            let event = name.trim_end_matches(".schema.json").to_string();
            files.insert((dir.file_name().to_string_lossy().to_string(), event));
        }
    }
    assert_eq!(files, sampled, "schema files = event types sampled");
}
