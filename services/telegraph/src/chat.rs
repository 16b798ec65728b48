//! The interactive terminal client (`telegraph chat`).

use crate::client::{Client, ClientError};

/// Runs the terminal client until the user quits.
pub async fn run(client: Client) -> Result<(), ClientError> {
    let _ = client;
    Err(ClientError::Invalid("the terminal client is not available yet".into()))
}
