//! The central loader: S3 objects of the log bucket -> ECS documents -> OpenSearch.

pub mod bench;
pub mod cli;
pub mod config;
pub mod content;
pub mod decode;
pub mod deliver;
pub mod detect;
pub mod ecs;
pub mod enrich;
pub mod exclude;
pub mod freshness;
pub mod index;
pub mod json_write;
pub mod lambda;
pub mod notify;
pub mod oversize;
pub mod parsers;
pub mod pipeline;
pub mod provenance;
pub mod rules;
pub mod setup;
pub mod sink;
pub mod verify;
