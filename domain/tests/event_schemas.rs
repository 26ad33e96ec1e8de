//! The published JSON Schemas (`schema/events/`) stay true to the events we
//! write: one schema per event type, whose fields and types match what the
//! serialised event carries. A field some samples of a type leave out
//! (`skip_serializing_if`) is optional in the schema; the others are required.

use chrono::{TimeZone, Utc};
use igny8_domain::DomainEvent;
use igny8_domain::billing::AccountEvent;
use igny8_domain::jobs::{JobEvent, Phase};
use igny8_domain::planner::{
    ClusterSummary, ContentType, IdeaChange, IdeaData, IdeaEvent, IdeaStatus, Intent,
    KeywordChange, KeywordData, OutlineSection, SectorKeywordsEvent,
};
use igny8_domain::publishing::{
    ConnectionTest, ExternalChange, PublicationEvent, PublicationOrigin, WpIntegrationEvent,
    WpMedia, WpPost,
};
use igny8_domain::tenancy::{
    ApiKeyEvent, IntegrationEvent, LoginEvent, Role, SessionEvent, TenantEvent, UserEvent,
};
use igny8_domain::writer::{
    AuthorProfile, ContentBody, ContentEvent, ContentOrigin, ContentStatus, ImagePromptEvent,
    ImageQuality, InternalLink, PrimaryKeywordEvent, PromptChange, PromptOrigin, PromptText,
    StoredImage, TaskChange, TaskData, TaskEvent, VersionAuthor, WriterSettingsEvent,
    WritingStrategy,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
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
    let outline = || {
        vec![OutlineSection {
            heading: s("Fit first"),
            level: 2,
            key_points: vec![s("toe box")],
        }]
    };
    let idea = |job_id: Option<Uuid>, cluster_id: Option<Uuid>| IdeaEvent::IdeaCreated {
        account_id: id,
        site_id: id,
        sector_id: id,
        idea: IdeaData {
            title: s("How to choose trail running shoes"),
            description: s("A buyer's guide"),
            outline: outline(),
            content_type: ContentType::Guide,
            primary_keyword: s("trail running shoes"),
            secondary_keywords: vec![s("best trail running shoes")],
            target_word_count: 1500,
            cluster_id,
            author_profile_id: None,
            strategy_id: None,
        },
        job_id,
    };
    let body = || ContentBody {
        title: s("Trail running shoes"),
        html: s("<p>trail running shoes</p>"),
        meta_title: s("Trail running shoes"),
        meta_description: s("All about trail running shoes."),
        word_count: 3,
        primary_keyword: s("trail running shoes"),
        secondary_keywords: vec![],
        internal_links: vec![InternalLink {
            content_id: id,
            keyword: s("trail running"),
        }],
        featured_image_id: None,
    };
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
                image_model: s("gpt-image-1"),
                api_key_sealed: Some(s("k1:00:00")),
                key_hint: Some(s("abcd")),
            },
        ),
        sample(
            "integration",
            IntegrationEvent::IntegrationConfigured {
                account_id: id,
                provider: s("openai"),
                base_url: s("https://api.openai.com/v1"),
                embedding_model: s("text-embedding-3-small"),
                chat_model: s("gpt-4o-mini"),
                image_model: String::new(),
                api_key_sealed: None,
                key_hint: None,
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
                items: vec![],
            },
        ),
        sample(
            "job",
            JobEvent::JobCreated {
                account_id: id,
                kind: s("auto_generate_content"),
                input: serde_json::json!({"site_id": id, "task_ids": [id], "regenerate": false}),
                reserved: 6_000,
                items: vec![id],
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
        sample("idea", idea(Some(id), Some(id))),
        sample("idea", idea(None, None)),
        sample(
            "idea",
            IdeaEvent::IdeaUpdated {
                change: IdeaChange {
                    title: Some(s("Choosing trail running shoes")),
                    status: Some(IdeaStatus::Archived),
                    ..Default::default()
                },
            },
        ),
        sample("idea", IdeaEvent::IdeaQueued { task_id: id }),
        sample("idea", IdeaEvent::IdeaDeleted {}),
        sample(
            "task",
            TaskEvent::TaskCreated {
                account_id: id,
                site_id: id,
                sector_id: id,
                task: TaskData {
                    title: s("Trail shoes"),
                    brief: s(""),
                    idea_id: Some(id),
                    cluster_id: None,
                    primary_keyword: s("trail running shoes"),
                    secondary_keywords: vec![],
                    target_word_count: 1500,
                    content_type: ContentType::Post,
                    outline: outline(),
                    author_profile_id: None,
                    strategy_id: Some(id),
                    allow_shared_primary: false,
                },
            },
        ),
        sample(
            "task",
            TaskEvent::TaskUpdated {
                change: TaskChange {
                    primary_keyword: Some(s("trail shoes")),
                    author_profile_id: Some(None),
                    strategy_id: Some(Some(id)),
                    ..Default::default()
                },
            },
        ),
        sample("task", TaskEvent::TaskDeleted {}),
        sample("task", TaskEvent::TaskGenerationStarted { job_id: id }),
        sample(
            "task",
            TaskEvent::TaskCompleted {
                job_id: id,
                content_id: id,
                version: 1,
                credits_milli: 3_000,
            },
        ),
        sample(
            "task",
            TaskEvent::TaskFailed {
                job_id: id,
                reason: s("x"),
            },
        ),
        sample("task", TaskEvent::TaskPublished {}),
        sample(
            "content",
            ContentEvent::ContentCreated {
                origin: ContentOrigin {
                    account_id: id,
                    site_id: id,
                    sector_id: id,
                    task_id: id,
                    idea_id: Some(id),
                    cluster_id: None,
                },
            },
        ),
        sample(
            "content",
            ContentEvent::ContentVersionAdded {
                version: 1,
                body: body(),
                author: VersionAuthor::Ai {
                    job_id: id,
                    provider: s("offline"),
                    model: s("offline"),
                    prompt_type: s("content"),
                    prompt_version: 1,
                    strategy_id: Some(id),
                    tokens: 0,
                    cost_usd_micros: 0,
                    credits_milli: 3_000,
                },
            },
        ),
        sample(
            "content",
            ContentEvent::ContentVersionAdded {
                version: 2,
                body: ContentBody {
                    internal_links: vec![],
                    ..body()
                },
                author: VersionAuthor::User {
                    user_id: None,
                    reverted_from: Some(1),
                },
            },
        ),
        sample(
            "content",
            ContentEvent::ContentVersionAdded {
                version: 3,
                body: ContentBody {
                    featured_image_id: Some(id),
                    ..body()
                },
                author: VersionAuthor::Images {
                    job_id: id,
                    image_ids: vec![id],
                },
            },
        ),
        sample(
            "image_prompt",
            ImagePromptEvent::ImagePromptExtracted {
                origin: PromptOrigin {
                    account_id: id,
                    site_id: id,
                    sector_id: id,
                    content_id: id,
                    task_id: id,
                },
                slot: 1,
                text: PromptText {
                    prompt: s("A runner on a rocky trail at dawn"),
                    alt_text: s("Trail runner on rocks"),
                    caption: s("Grip matters on wet rock."),
                    placement: Some(s("Choosing the grip")),
                },
                job_id: id,
                credits_milli: 500,
            },
        ),
        sample(
            "image_prompt",
            ImagePromptEvent::ImagePromptCreated {
                origin: PromptOrigin {
                    account_id: id,
                    site_id: id,
                    sector_id: id,
                    content_id: id,
                    task_id: id,
                },
                slot: 0,
                text: PromptText {
                    prompt: s("A trail at dawn"),
                    alt_text: s(""),
                    caption: s(""),
                    placement: None,
                },
                user_id: Some(id),
            },
        ),
        sample(
            "image_prompt",
            ImagePromptEvent::ImagePromptEdited {
                change: PromptChange {
                    prompt: Some(s("A runner on a muddy trail")),
                    ..Default::default()
                },
            },
        ),
        sample("image_prompt", ImagePromptEvent::ImagePromptDeleted {}),
        sample(
            "image_prompt",
            ImagePromptEvent::ImageGenerationStarted { job_id: id },
        ),
        sample(
            "image_prompt",
            ImagePromptEvent::ImageRequested {
                job_id: id,
                provider: s("runware"),
                task_uuid: id,
            },
        ),
        sample(
            "image_prompt",
            ImagePromptEvent::ImageStored {
                image: StoredImage {
                    image_id: id,
                    job_id: id,
                    sha256: "ab".repeat(32),
                    mime_type: s("image/png"),
                    width: 1024,
                    height: 1024,
                    bytes: 523_000,
                    provider: s("runware"),
                    model: s("runware:101@1"),
                    quality: ImageQuality::Basic,
                    size: s("1024x1024"),
                    prompt: s("A runner on a rocky trail at dawn"),
                    cost_usd_micros: 3_800,
                    credits_milli: 1_000,
                },
            },
        ),
        sample(
            "image_prompt",
            ImagePromptEvent::ImageFailed {
                job_id: id,
                reason: s("the provider answered HTTP 500"),
            },
        ),
        sample(
            "content",
            ContentEvent::ContentStatusChanged {
                from: ContentStatus::Draft,
                status: ContentStatus::Review,
            },
        ),
        sample(
            "primary_keyword",
            PrimaryKeywordEvent::PrimaryKeywordClaimed {
                task_id: id,
                keyword: s("trail running shoes"),
                shared_with: vec![],
            },
        ),
        sample(
            "primary_keyword",
            PrimaryKeywordEvent::PrimaryKeywordClaimed {
                task_id: id,
                keyword: s("trail running shoes"),
                shared_with: vec![id],
            },
        ),
        sample(
            "primary_keyword",
            PrimaryKeywordEvent::PrimaryKeywordReleased { task_id: id },
        ),
        sample(
            "writer_settings",
            WriterSettingsEvent::PromptChanged {
                prompt_type: s("content"),
                version: 1,
                template: Some(s("Write {idea_title} in {language}")),
            },
        ),
        sample(
            "writer_settings",
            WriterSettingsEvent::PromptChanged {
                prompt_type: s("content"),
                version: 2,
                template: None,
            },
        ),
        sample(
            "writer_settings",
            WriterSettingsEvent::AuthorProfileSaved {
                profile_id: id,
                profile: AuthorProfile {
                    name: s("Friendly"),
                    description: s(""),
                    tone: s("warm"),
                    language: s("de"),
                },
            },
        ),
        sample(
            "writer_settings",
            WriterSettingsEvent::AuthorProfileDeleted { profile_id: id },
        ),
        sample(
            "writer_settings",
            WriterSettingsEvent::StrategySaved {
                strategy_id: id,
                strategy: WritingStrategy {
                    name: s("Evergreen"),
                    description: s(""),
                    sector_id: Some(id),
                    prompt_overrides: [(s("content"), s("Long {idea_title}"))].into(),
                    default_author_profile_id: None,
                },
            },
        ),
        sample(
            "writer_settings",
            WriterSettingsEvent::StrategyDeleted { strategy_id: id },
        ),
        sample(
            "wp_integration",
            WpIntegrationEvent::WordPressConnected {
                account_id: id,
                site_id: id,
                url: s("https://blog.example.com"),
                username: s("editor"),
                credential: s("v1.s1.a.b"),
                webhook_secret: s("v1.s1.c.d"),
                max_concurrent: 2,
            },
        ),
        sample(
            "wp_integration",
            WpIntegrationEvent::WordPressConnectionChanged {
                url: s("https://blog.example.com"),
                username: s("editor"),
                credential: Some(s("v1.s1.e.f")),
                max_concurrent: 2,
            },
        ),
        sample(
            "wp_integration",
            WpIntegrationEvent::WordPressConnectionChanged {
                url: s("https://blog.example.com"),
                username: s("editor"),
                credential: None,
                max_concurrent: 3,
            },
        ),
        sample(
            "wp_integration",
            WpIntegrationEvent::WordPressConnectionTested {
                test: ConnectionTest {
                    ok: true,
                    ..ConnectionTest::default()
                },
            },
        ),
        sample(
            "wp_integration",
            WpIntegrationEvent::WordPressDisconnected {},
        ),
        sample(
            "publication",
            PublicationEvent::PublishStarted {
                origin: PublicationOrigin {
                    account_id: id,
                    site_id: id,
                    integration_id: id,
                    content_id: id,
                },
                publish_id: id,
                forced: false,
            },
        ),
        sample(
            "publication",
            PublicationEvent::PostCreateRequested { publish_id: id },
        ),
        sample(
            "publication",
            PublicationEvent::MediaUploadRequested {
                publish_id: id,
                sha256: s("ab"),
            },
        ),
        sample(
            "publication",
            PublicationEvent::MediaUploaded {
                publish_id: id,
                sha256: s("ab"),
                media: WpMedia {
                    media_id: 7,
                    url: s("https://blog.example.com/a.png"),
                },
                adopted: true,
            },
        ),
        sample(
            "publication",
            PublicationEvent::PostPublished {
                publish_id: id,
                post: wp_post(),
                action: s("created"),
                warnings: vec![s("SLUG_CHANGED")],
            },
        ),
        sample(
            "publication",
            PublicationEvent::PostUnpublished {
                publish_id: id,
                post: wp_post(),
            },
        ),
        sample(
            "publication",
            PublicationEvent::PublishFailed {
                publish_id: id,
                error: s("rest_cannot_create"),
            },
        ),
        sample(
            "publication",
            PublicationEvent::PublishOutcomeUnknown {
                publish_id: id,
                request: format!("media:{}", "ab".repeat(32)),
                error: s("no answer within 30s"),
                at: chrono::Utc::now(),
            },
        ),
        sample(
            "publication",
            PublicationEvent::ExternalChangeDetected {
                change: ExternalChange {
                    kind: s("edited"),
                    source: s("sync"),
                    status: None,
                    modified_gmt: None,
                    content_sha256: None,
                },
            },
        ),
        sample(
            "account",
            AccountEvent::ReservationTransferred {
                from: s("automation:run"),
                reservation_id: s("job"),
                amount: 4000,
                from_after: 6000,
                reserved_after: 10000,
                reason: s("auto_generate_content"),
            },
        ),
    ]
    .into_iter()
    .chain(automation_samples(id, at))
    .collect()
}

/// The automation context's events (optional fields both set and unset).
fn automation_samples(id: Uuid, at: chrono::DateTime<Utc>) -> Vec<Sample> {
    let s = String::from;
    use igny8_domain::automation::run::{RunOrigin, StageJob};
    use igny8_domain::automation::{
        Action, CatchUp, Condition, RuleDef, RuleEvent, RunEvent, RunOutcome, SiteLockEvent,
        SkippedItem, Stage, Trigger,
    };
    let def = |trigger: Trigger, day: Option<i64>| RuleDef {
        name: s("Daily pipeline"),
        description: s("Clusters new keywords and writes"),
        trigger,
        timezone: s("Europe/Berlin"),
        conditions: vec![Condition {
            field: s("unclustered_keywords"),
            operator: s("gte"),
            value: serde_json::json!(50),
        }],
        stages: vec![
            Stage {
                action: Action::AutoCluster,
                batch_size: 1000,
                params: serde_json::json!({"num_clusters": 5}),
            },
            Stage {
                action: Action::GenerateContent,
                batch_size: 10,
                params: Value::Null,
            },
        ],
        max_credits_per_run: 100_000,
        max_credits_per_day: day,
        catch_up: CatchUp::Once,
    };
    let day = at.date_naive();
    let origin = |slot: Option<chrono::DateTime<Utc>>, burst: Option<i64>| RunOrigin {
        account_id: id,
        site_id: id,
        rule_id: id,
        trigger: s(if slot.is_some() { "schedule" } else { "event" }),
        slot,
        burst,
        day,
        allotted: 100_000,
    };
    let stages = def(Trigger::Manual, None).stages;
    vec![
        sample(
            "automation_rule",
            RuleEvent::RuleCreated {
                rule_id: id,
                account_id: id,
                site_id: id,
                def: def(
                    Trigger::Schedule {
                        cron: s("0 9 * * *"),
                    },
                    Some(300_000),
                ),
                next_slot: Some(at),
            },
        ),
        sample(
            "automation_rule",
            RuleEvent::RuleCreated {
                rule_id: id,
                account_id: id,
                site_id: id,
                def: def(
                    Trigger::Event {
                        event_types: vec![s("KeywordsAdded")],
                        debounce_seconds: 60,
                    },
                    None,
                ),
                next_slot: None,
            },
        ),
        sample(
            "automation_rule",
            RuleEvent::RuleUpdated {
                def: def(
                    Trigger::Schedule {
                        cron: s("0 9 * * 1-5"),
                    },
                    None,
                ),
                next_slot: Some(at),
            },
        ),
        sample(
            "automation_rule",
            RuleEvent::RuleUpdated {
                def: def(Trigger::Manual, None),
                next_slot: None,
            },
        ),
        sample("automation_rule", RuleEvent::RulePaused {}),
        sample(
            "automation_rule",
            RuleEvent::RuleResumed {
                next_slot: Some(at),
            },
        ),
        sample(
            "automation_rule",
            RuleEvent::RuleResumed { next_slot: None },
        ),
        sample("automation_rule", RuleEvent::RuleDeleted {}),
        sample(
            "automation_rule",
            RuleEvent::RuleFired {
                run_id: id,
                trigger: s("schedule"),
                slot: Some(at),
                burst: None,
                missed: 2,
                budget: 100_000,
                day,
                next_slot: Some(at),
            },
        ),
        sample(
            "automation_rule",
            RuleEvent::RuleFired {
                run_id: id,
                trigger: s("event"),
                slot: None,
                burst: Some(3),
                missed: 0,
                budget: 0,
                day,
                next_slot: None,
            },
        ),
        sample(
            "automation_rule",
            RuleEvent::SlotsSkipped {
                count: 3,
                first: at,
                last: at,
                next_slot: Some(at),
            },
        ),
        sample(
            "automation_rule",
            RuleEvent::SlotsSkipped {
                count: 1,
                first: at,
                last: at,
                next_slot: None,
            },
        ),
        sample(
            "automation_rule",
            RuleEvent::RunBudgetReturned {
                run_id: id,
                day,
                amount: 40_000,
            },
        ),
        sample(
            "automation_run",
            RunEvent::RunStarted {
                origin: origin(Some(at), None),
                stages: stages.clone(),
                budget: 100_000,
                conditions: serde_json::json!([{"field": "unclustered_keywords", "operator": "gte", "value": 50, "actual": 120, "held": true}]),
            },
        ),
        sample(
            "automation_run",
            RunEvent::RunSkipped {
                origin: origin(None, Some(2)),
                reason: s("conditions_not_met"),
                conditions: serde_json::json!([]),
            },
        ),
        sample(
            "automation_run",
            RunEvent::StageItemsSelected {
                stage: 1,
                items: vec![id],
                skipped: vec![SkippedItem {
                    id,
                    reason: s("budget"),
                }],
            },
        ),
        sample(
            "automation_run",
            RunEvent::StageJobLaunched {
                stage: 1,
                job: StageJob {
                    job_id: id,
                    items: vec![id],
                    reserved: 3000,
                    slot: Some(at),
                },
            },
        ),
        sample(
            "automation_run",
            RunEvent::StageItemsDropped {
                stage: 1,
                items: vec![SkippedItem {
                    id,
                    reason: s("KEYWORD_CANNIBALIZATION"),
                }],
            },
        ),
        sample(
            "automation_run",
            RunEvent::StageCompleted {
                stage: 1,
                outputs: vec![id],
                charged: 2000,
                failed: vec![],
            },
        ),
        sample(
            "automation_run",
            RunEvent::StageFailed {
                stage: 0,
                error: s("provider down"),
                charged: 0,
            },
        ),
        sample(
            "automation_run",
            RunEvent::RunFinished {
                outcome: RunOutcome::BudgetExhausted,
                reason: Some(s("stage 1 left items the budget did not cover")),
                charged: 2000,
            },
        ),
        sample(
            "automation_run",
            RunEvent::RunFinished {
                outcome: RunOutcome::Succeeded,
                reason: None,
                charged: 12000,
            },
        ),
        sample(
            "automation_run",
            RunEvent::RunCancelled {
                by: s("user:1"),
                charged: 0,
            },
        ),
        sample(
            "automation_site",
            SiteLockEvent::SiteLockAcquired { run_id: id },
        ),
        sample(
            "automation_site",
            SiteLockEvent::SiteLockReleased { run_id: id },
        ),
    ]
}

#[test]
fn the_event_types_a_rule_may_name_are_the_catalogues() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema/events");
    let mut files = BTreeSet::new();
    for dir in std::fs::read_dir(&root).unwrap().flatten() {
        if dir.path().is_dir() {
            for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
                let name = f.file_name().to_string_lossy().to_string();
                if let Some(t) = name.strip_suffix(".schema.json") {
                    files.insert(t.to_string());
                }
            }
        }
    }
    let listed: BTreeSet<String> = igny8_domain::automation::EVENT_TYPES
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(
        listed, files,
        "automation::EVENT_TYPES lists every event type of schema/events"
    );
}

fn wp_post() -> WpPost {
    WpPost {
        post_id: 42,
        link: "https://blog.example.com/p/".into(),
        status: "publish".into(),
        slug: "p".into(),
        modified_gmt: "2026-12-03T10:00:00".into(),
        content_sha256: "9f".into(),
        version: 1,
    }
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
    // Per event type: the fields every sample writes, and those any sample writes.
    // (aggregate, event type) → (fields every sample writes, fields any sample writes).
    type Fields = (BTreeSet<String>, BTreeSet<String>);
    let mut fields: BTreeMap<(&str, &str), Fields> = BTreeMap::new();
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
        let properties: BTreeSet<&str> = declared["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let written: BTreeSet<&str> = inner.keys().map(String::as_str).collect();
        assert!(
            required.is_subset(&written),
            "{t}: schema's required fields {required:?} are written ({written:?})"
        );
        assert!(
            written.is_subset(&properties),
            "{t}: fields written {written:?} are in the schema ({properties:?})"
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
        let written: BTreeSet<String> = written.iter().map(|k| k.to_string()).collect();
        let (always, ever) = fields
            .entry((sample.aggregate, t))
            .or_insert_with(|| (written.clone(), BTreeSet::new()));
        always.retain(|k| written.contains(k));
        ever.extend(written);
    }
    for ((aggregate, t), (always, ever)) in &fields {
        let schema = schema_for(aggregate, t);
        let declared = &schema["properties"][*t];
        let required: BTreeSet<String> = declared["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let properties: BTreeSet<String> = declared["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            &required, always,
            "{t}: schema's required fields = fields every sample writes"
        );
        assert_eq!(
            &properties, ever,
            "{t}: schema's fields = fields some sample writes (an optional one set in a sample)"
        );
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
