//! The config file as written: serde structs, one doc comment per key.
//! Unknown keys are errors everywhere (`deny_unknown_fields`): a typo must
//! not silently fall back to a default.

use super::units::{HumanDuration, Rate};
use crate::codec::{InputFormat, JobFormat, MappingConfig};
use crate::domain::{Method, Platform};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub topics: TopicsConfig,
    #[serde(default)]
    pub process: ProcessConfig,
    #[serde(default)]
    pub send: SendConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub input: InputConfig,
    /// A Confluent-compatible schema registry: writer schemas of input
    /// records by id, and the job schema's id when jobs are Avro.
    pub schema_registry: Option<SchemaRegistryConfig>,
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    #[serde(default)]
    pub partners: Vec<PartnerConfig>,
    #[serde(default)]
    pub postbacks: Vec<PostbackConfig>,
    /// USD per unit of a currency (`EUR = "1.08"`), for `{revenue_usd}` and
    /// revenue filters in another currency.
    #[serde(default)]
    pub currency_rates: BTreeMap<String, String>,
}

/// `[postbacks.when]`: every condition given must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WhenConfig {
    pub country: Vec<String>,
    pub os: Vec<String>,
    pub campaigns: Vec<String>,
    /// `"5.00 USD"`.
    pub revenue_min: Option<String>,
    pub revenue_max: Option<String>,
    pub event_params: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Brokers to bootstrap from.
    pub bootstrap_servers: String,
    /// Consumer group of the processing stage.
    pub group_id: String,
    /// Consumer group of the sender stage.
    pub sender_group_id: String,
    /// Stable identity of this instance: the processor's `transactional.id`
    /// and `group.instance.id` derive from it, so a restarted instance fences
    /// its previous incarnation. Default: the host name.
    pub instance_id: Option<String>,
    /// Join the processor's group with `group.instance.id = instance_id`
    /// (static membership, on by default): a restarted instance takes its
    /// partitions back at once, without a rebalance and without waiting for
    /// its old session to time out. Needs a stable, unique `instance_id` per
    /// instance. A static member does not leave the group when it stops, so
    /// an instance removed for good hands its partitions over only after
    /// `session.timeout.ms` (45 s).
    pub static_membership: bool,
    /// Extra librdkafka settings passed as-is to every client
    /// (e.g. `"security.protocol" = "SASL_SSL"`).
    pub client: BTreeMap<String, String>,
    /// Extra librdkafka settings for consumers only (`"session.timeout.ms"`).
    pub consumer: BTreeMap<String, String>,
    /// Extra librdkafka settings for producers only (`"linger.ms"`).
    pub producer: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: "localhost:9092".into(),
            group_id: "postback".into(),
            sender_group_id: "postback-sender".into(),
            instance_id: None,
            static_membership: true,
            client: BTreeMap::new(),
            consumer: BTreeMap::new(),
            producer: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Input events, keyed by device id.
    pub events: String,
    /// Input records that could not be processed.
    pub events_dlq: String,
    /// Repartition topic feeding the user stage, keyed by app + user.
    pub user_activity: String,
    /// Repartition topic feeding the device stage when an input record is
    /// not on its state partition (the input grew, or is keyed otherwise);
    /// as many partitions as the device changelog.
    pub device_events: String,
    /// Compacted changelog of device state; its partition count is the
    /// number of device state partitions (`process.state_partitions`).
    pub device_changelog: String,
    /// Compacted changelog of user state; as many partitions as `user_activity`.
    pub user_changelog: String,
    /// Postback jobs.
    pub jobs: String,
    /// Prefix of the retry tier topics: `<prefix>-1`, `<prefix>-2`, ...
    pub jobs_retry_prefix: String,
    /// Jobs given up, with the reason.
    pub jobs_dlq: String,
    /// One record per delivery attempt.
    pub deliveries: String,
    /// Compacted topic with one record: the state layout's generation and
    /// partition counts (written by `postback state rescale`).
    pub layout: String,
    /// Create missing topics at start (admin API).
    pub create: bool,
    /// `retention.ms` of the two DLQs when postback creates them: long
    /// enough to notice a failure and replay it.
    pub dlq_retention: HumanDuration,
    /// `retention.ms` of the delivery log when postback creates it.
    pub deliveries_retention: HumanDuration,
    /// Partitions of `user_activity` when created; default: as `events`.
    pub user_activity_partitions: Option<i32>,
    /// Partitions of `jobs`, the retry tiers and the job DLQ when created.
    pub jobs_partitions: i32,
    /// Replication factor of created topics; -1 takes the broker default.
    pub replication_factor: i32,
    /// How the processor writes jobs: `json`, or `avro` (Confluent framing
    /// with the schema registered under `<jobs>-value` when
    /// `[schema_registry]` is set, single-object encoding otherwise).
    pub jobs_format: JobFormat,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig {
            events: "tracker.events".into(),
            events_dlq: "tracker.events.dlq".into(),
            user_activity: "postback.user-activity".into(),
            device_events: "postback.device-events".into(),
            layout: "postback.layout".into(),
            device_changelog: "postback.device-state-changelog".into(),
            user_changelog: "postback.user-state-changelog".into(),
            jobs: "postback.jobs".into(),
            jobs_retry_prefix: "postback.jobs.retry".into(),
            jobs_dlq: "postback.jobs.dlq".into(),
            deliveries: "postback.deliveries".into(),
            create: true,
            dlq_retention: HumanDuration::secs(30 * 86400),
            deliveries_retention: HumanDuration::secs(7 * 86400),
            user_activity_partitions: None,
            jobs_partitions: 8,
            replication_factor: -1,
            jobs_format: JobFormat::Json,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessConfig {
    /// Where the per-partition RocksDB stores live.
    pub state_dir: PathBuf,
    /// Most records in one transaction.
    pub max_batch: usize,
    /// Most bytes (keys + values read) in one transaction.
    pub max_batch_bytes: usize,
    /// Longest a batch's first record waits for its transaction to begin
    /// (batches are otherwise cut when the previous commit settles).
    pub commit_interval: HumanDuration,
    /// How long a job may wait for delivery (per partner overridable).
    pub job_ttl: HumanDuration,
    /// Time the stage gets on SIGTERM to settle its batch and leave the
    /// group; the process exits when it is up, whatever it is waiting for.
    pub shutdown_deadline: HumanDuration,
    /// Device state partitions when the device changelog is created;
    /// default: the input's partition count at that time. Afterwards the
    /// changelog's partition count is the number every instance uses.
    pub state_partitions: Option<i32>,
    /// Processing threads, each a member of the group with its own
    /// consumer, transactional producer and stores; default: one per core
    /// the process may use, at most one per partition is started.
    pub threads: Option<usize>,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            state_dir: PathBuf::from("./state"),
            max_batch: 20_000,
            max_batch_bytes: 16 * 1024 * 1024,
            commit_interval: HumanDuration::millis(100),
            job_ttl: HumanDuration::secs(24 * 3600),
            shutdown_deadline: HumanDuration::secs(20),
            state_partitions: None,
            threads: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SendConfig {
    /// Delay of each retry tier; one topic per tier.
    pub retry_delays: Vec<HumanDuration>,
    /// Random spread of each delay, as a fraction (0.2 = ±20%).
    pub retry_jitter: f64,
    /// `Retry-After` may lengthen a wait up to this many times the tier delay.
    pub retry_after_factor: u32,
    /// Default connect timeout (per partner overridable).
    pub connect_timeout: HumanDuration,
    /// Default total request timeout (per partner overridable).
    pub timeout: HumanDuration,
    /// Jobs held in memory per instance (in flight or waiting for a partner slot).
    pub max_in_flight: usize,
    /// Longest a job waits for its partner's rate limit or a concurrency
    /// slot before it is deferred to the first retry tier (not an attempt):
    /// a held job holds its partition's committed offset.
    pub max_hold: HumanDuration,
    /// Jobs waiting for one partner beyond which new ones are deferred to the
    /// first retry tier (not an attempt), so a slow partner cannot hold the
    /// whole instance.
    pub max_pending_per_partner: usize,
    /// CIDRs the SSRF guard lets through (tests, on-prem partners).
    pub allow_networks: Vec<String>,
    /// A proxy for every partner request (`http://proxy:3128`). None by
    /// default: proxies in the environment (`HTTP_PROXY`) are ignored.
    pub proxy: Option<String>,
    /// Time in-flight requests get to finish on shutdown.
    pub shutdown_deadline: HumanDuration,
    /// Idle keep-alive connections kept per host.
    pub pool_max_idle_per_host: usize,
    /// Consecutive failures that open a partner's circuit (per partner overridable).
    pub circuit_failures: u32,
    /// How long an open circuit waits before a probe (per partner overridable).
    pub circuit_open_for: HumanDuration,
    /// How often consumed offsets are committed.
    pub commit_interval: HumanDuration,
}

impl Default for SendConfig {
    fn default() -> Self {
        SendConfig {
            retry_delays: [10, 60, 300, 1800, 7200, 21600].map(HumanDuration::secs).to_vec(),
            retry_jitter: 0.2,
            retry_after_factor: 2,
            connect_timeout: HumanDuration::secs(2),
            timeout: HumanDuration::secs(5),
            max_in_flight: 4096,
            max_hold: HumanDuration::secs(5),
            // half the instance: a slow partner leaves the other half to the
            // rest, while partners under even load are never deferred
            max_pending_per_partner: 2048,
            allow_networks: Vec::new(),
            proxy: None,
            shutdown_deadline: HumanDuration::secs(10),
            pool_max_idle_per_host: 64,
            circuit_failures: 20,
            circuit_open_for: HumanDuration::secs(30),
            commit_interval: HumanDuration::secs(1),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address of `/metrics`, `/healthz`, `/readyz` (and `/inspect` when
    /// enabled). Default: `0.0.0.0:9464` for `process` and `run`,
    /// `0.0.0.0:9465` for `send`, so the two stages share a host.
    pub listen: Option<String>,
    /// Serve `/inspect/...`: stored device identifiers, IPs and user ids,
    /// to anyone who can reach the port (and holds `inspect_token`).
    pub inspect: bool,
    /// When set, `/inspect` requires `Authorization: Bearer <token>`.
    pub inspect_token: Option<String>,
}

impl AdminConfig {
    /// The admin address of a process running these stages.
    pub fn listen_for(&self, processor: bool) -> String {
        self.listen.clone().unwrap_or_else(|| if processor { "0.0.0.0:9464" } else { "0.0.0.0:9465" }.to_owned())
    }
}

/// How input records are read and how big they may be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// How records without a magic byte are read: `auto` (JSON or a bare Avro
    /// datum, whichever reads the whole record), `json` or `avro`. Confluent
    /// framing and Avro single-object encoding are recognised in every mode.
    pub format: InputFormat,
    /// Larger records go to the DLQ unread. State and user-activity records
    /// carry up to [`crate::config::STATE_COPIES`] copies of an event's
    /// attribution, so this bounds them under Kafka's record size limit.
    pub max_record_bytes: usize,
    /// Longest string (and map key) accepted in any field of an event.
    pub max_field_bytes: usize,
    /// How the input is partitioned, which says where a device's state is.
    pub partitioned_by: Partitioning,
    /// Events of another schema: where each of our fields is in them.
    pub mapping: Option<MappingConfig>,
}

/// `[schema_registry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// Base URL of the Confluent-compatible API, e.g.
    /// `http://registry:8081` (Apicurio: `.../apis/ccompat/v7`).
    pub url: String,
    /// Basic auth.
    pub username: Option<String>,
    pub password: Option<String>,
    /// A PEM file of CA certificates trusted for an `https` URL (besides
    /// the built-in roots).
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate (chain) for mutual TLS, with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Per request.
    #[serde(default = "registry_timeout")]
    pub timeout: HumanDuration,
    /// Writer schemas kept in memory (the oldest fetched goes first).
    #[serde(default = "registry_max_schemas")]
    pub max_schemas: usize,
}

fn registry_timeout() -> HumanDuration {
    HumanDuration::secs(5)
}

fn registry_max_schemas() -> usize {
    1000
}

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig {
            format: InputFormat::Auto,
            max_record_bytes: 65_536,
            max_field_bytes: 8192,
            partitioned_by: Partitioning::DeviceId,
            mapping: None,
        }
    }
}

/// `input.partitioned_by`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Partitioning {
    /// Kafka's default partitioner on the device id key: a device's state
    /// partition is `murmur2(key) % K`, whatever the input's partition
    /// count is now; records elsewhere (the input grew) are repartitioned.
    #[default]
    DeviceId,
    /// Any partitioning that keeps each device on one partition (e.g. all
    /// of a user's devices together): records are processed where they
    /// arrive, so the input's partition count must stay `K`.
    Custom,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub id: String,
    pub platform: PlatformName,
    /// Gap in activity after which the next activity is a re-engagement.
    #[serde(default = "default_window")]
    pub inactivity_window: HumanDuration,
    /// true: an organic return starts an organic attribution; false: it
    /// keeps the previous one.
    #[serde(default = "yes")]
    pub reattribute_to_organic: bool,
    /// The project the app's users belong to (default: one project for all
    /// apps).
    #[serde(default)]
    pub project: Option<String>,
}

fn default_window() -> HumanDuration {
    HumanDuration::secs(30 * 86400)
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PlatformName {
    Mobile,
    Web,
}

impl From<PlatformName> for Platform {
    fn from(p: PlatformName) -> Platform {
        match p {
            PlatformName::Mobile => Platform::Mobile,
            PlatformName::Web => Platform::Web,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// In-flight requests to this partner, for the whole sender group (each
    /// sender takes its share of the group's partitions as its share).
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Optional request rate limit, for the whole sender group (shared out
    /// like `max_concurrency`).
    pub rate_limit: Option<Rate>,
    pub connect_timeout: Option<HumanDuration>,
    pub timeout: Option<HumanDuration>,
    pub circuit_failures: Option<u32>,
    pub circuit_open_for: Option<HumanDuration>,
    /// Secret of the HMAC-SHA256 request signature; no signature when absent.
    pub signing_secret: Option<String>,
    /// Header that carries the signature.
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
    /// Overrides `process.job_ttl` for this partner's jobs.
    pub job_ttl: Option<HumanDuration>,
    /// Per-campaign values of partner parameters (`{partner_param:NAME}`).
    #[serde(default)]
    pub campaign_params: BTreeMap<String, BTreeMap<String, String>>,
    /// A PEM file of CA certificates trusted for this partner's `https`
    /// URLs besides the built-in roots (a partner behind a private PKI).
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate (chain) presented to this partner (mutual
    /// TLS), with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// A ready-made partner (`postback partners list`): its postbacks and
    /// defaults, of which `events` enables the ones wanted.
    pub preset: Option<String>,
    /// The preset's postbacks to send, by their id in the preset, with the
    /// sending mode of each (`attributed` or `all`); a custom event as
    /// `"custom_event:NAME"`.
    #[serde(default)]
    pub events: BTreeMap<String, SendingName>,
    /// Where this partner's relative postback URLs (`/path?…`, `?…`) start:
    /// scheme, host and path, no macros.
    pub base_url: Option<String>,
    /// Query parameters added to every postback URL of the partner that
    /// does not set them itself (values are templates).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Headers added to every postback of the partner that does not set
    /// them itself (values are templates).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The partner's name for each event, for `{partner_event}`: keys are
    /// postback events (`install`, `first_payment`, …) or `custom_event:NAME`.
    #[serde(default)]
    pub event_names: BTreeMap<String, String>,
    /// Partner parameters for every campaign (`{partner_param:NAME}`);
    /// `campaign_params` override them per campaign. Credentials and keys
    /// go here, best by reference (`${env:…}`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Privacy policy for devices that limit ad tracking or did not consent.
    #[serde(default)]
    pub privacy: PrivacyConfig,
}

/// `[partners.privacy]`: what this partner gets from a device that limits
/// ad tracking, denied tracking (ATT), or refused consent to `purpose`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// `send` (as if nothing were limited), `strip` (device identifiers,
    /// IP and user agent render empty) or `suppress` (no postback).
    pub policy: Option<PrivacyPolicyName>,
    /// The consent purpose this partner needs (the event's `consent` map);
    /// default `ad_sharing`.
    pub purpose: Option<String>,
    /// An unknown consent counts as refused (traffic that needs opt-in).
    #[serde(default)]
    pub require_consent: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PrivacyPolicyName {
    Send,
    Strip,
    Suppress,
}

fn default_concurrency() -> usize {
    64
}

fn default_signature_header() -> String {
    "X-Postback-Signature".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostbackConfig {
    /// Display name; "Partner | event" is the recommended form.
    pub name: String,
    /// Stable id (job ids, metrics); default: a slug of `name`.
    pub id: Option<String>,
    pub partner: String,
    pub event: String,
    /// `device` or `user` for reengagement, first_payment, first_custom_payment.
    pub by: Option<ByName>,
    /// `lt` or `ca` for events that are not fixed-routed.
    pub attribution: Option<RoutingName>,
    /// The app's event name, for `event = "custom_event"`.
    pub custom_event: Option<String>,
    #[serde(default)]
    pub sending: SendingName,
    /// Default: every app where the event is valid.
    pub apps: Option<Vec<String>>,
    /// An additional postback for these campaigns only.
    #[serde(default)]
    pub campaigns: Vec<String>,
    /// Payments: store-verified purchases only.
    #[serde(default)]
    pub verified_only: bool,
    /// Fire only within this long after the start of the attribution the
    /// postback is sent in (e.g. "7d").
    pub window: Option<HumanDuration>,
    /// With `sending = "all"`: also render another partner's click details.
    #[serde(default)]
    pub share_other_attribution: bool,
    /// Conditions on the event (`[postbacks.when]`).
    #[serde(default)]
    pub when: Option<WhenConfig>,
    /// Fire only on the nth event of the kind (1-based).
    #[serde(default)]
    pub occurrence: Option<u32>,
    #[serde(default = "default_method")]
    pub method: Method,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    /// How `body` values are escaped: json (default) or form.
    #[serde(default)]
    pub body_format: BodyFormat,
}

fn default_method() -> Method {
    Method::Get
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ByName {
    Device,
    User,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RoutingName {
    Lt,
    Ca,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SendingName {
    #[default]
    Attributed,
    All,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    #[default]
    Json,
    Form,
}
