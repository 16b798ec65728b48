//! `hello-client --Ice.Config=config.client [t|o|s ...]`: calls `Hello.Proxy` twoway (`t`, the
//! default), oneway (`o`), and asks the server to shut down (`s`).

use anyhow::Context as _;
use hello_example::demo::HelloPrx;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().collect();
    let communicator = floe::initialize(&mut args)?;
    let base = communicator
        .property_to_proxy("Hello.Proxy")?
        .context("Hello.Proxy is not set: pass --Ice.Config=config.client")?;
    let hello = HelloPrx::checked_cast(&base)
        .await?
        .context("Hello.Proxy does not name a ::Demo::Hello")?;
    let commands: Vec<String> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        vec!["t".into()]
    };
    for command in commands {
        match command.as_str() {
            "t" => hello.say_hello(0).await?,
            "o" => {
                HelloPrx::unchecked_cast(hello.ice_oneway())
                    .say_hello(0)
                    .await?
            }
            "s" => hello.shutdown().await?,
            other => anyhow::bail!(
                "unknown command `{other}`: use t (twoway), o (oneway) or s (shutdown)"
            ),
        }
    }
    communicator.destroy().await;
    Ok(())
}
