//! The loader as a Lambda function on the object-created queue: [`events`] reads what a message
//! names, [`handler`] loads it and answers SQS per message, [`settings`] reads the function's
//! environment; [`setup`] answers the central stack's custom resource that prepares OpenSearch.

pub mod enrichment;
pub mod events;
pub mod freshness;
pub mod handler;
pub mod settings;
pub mod setup;

pub use handler::{Handler, HandlerError, HandlerSettings};
