//! Ice's `optional` suite, cut down: optional parameters, return values and out-parameters with
//! ZeroC's C++ server. In encoding 1.0 optionals are never sent, and arrive unset.

mod common;

use common::types::{Basics, Color, TypesPrx};
use common::*;
use floe::EncodingVersion;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floe_client_passes_optionals_to_zeroc_cpp() {
    let cpp = cpp::start_cpp_server();
    let comm = client_communicator(&[]);
    let types11 = TypesPrx(comm.string_to_proxy(&cpp.types).unwrap().unwrap());
    let b = Basics {
        str: "word".into(),
        c: Color::Blue,
        l: -1,
        ..Default::default()
    };
    assert_eq!(types11.op_optional(None, None).await.unwrap(), (None, None));
    assert_eq!(
        types11
            .op_optional(Some("héllo".into()), None)
            .await
            .unwrap(),
        (Some(6), None)
    );
    assert_eq!(
        types11.op_optional(None, Some(b.clone())).await.unwrap(),
        (None, Some(vec!["word".to_string()]))
    );
    assert_eq!(
        types11
            .op_optional(Some(String::new()), Some(b.clone()))
            .await
            .unwrap(),
        (Some(0), Some(vec!["word".to_string()]))
    );
    let types10 = types11.with(|p| p.ice_encoding_version(EncodingVersion::V1_0));
    assert_eq!(
        types10
            .op_optional(Some("x".into()), Some(b))
            .await
            .unwrap(),
        (None, None)
    );
    comm.destroy().await;
}
