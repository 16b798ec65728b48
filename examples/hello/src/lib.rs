//! Floe's `hello` demo: the generated code for `Hello.ice` and the servant.

use std::time::Duration;

use floe::codegen::{Current, Error};

floe::include_slice!("Hello");

/// The `Demo::Hello` servant: prints a greeting; `shutdown` stops the server.
#[derive(Debug, Default)]
pub struct HelloI;

impl demo::Hello for HelloI {
    async fn say_hello(&self, delay: i32, _current: &Current) -> Result<(), Error> {
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        }
        println!("Hello World!");
        Ok(())
    }

    async fn shutdown(&self, current: &Current) -> Result<(), Error> {
        println!("Shutting down...");
        current.adapter.communicator().shutdown();
        Ok(())
    }
}
