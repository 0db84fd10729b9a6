//! OPTIONS pings: one out-of-dialog OPTIONS to a trunk, and its answer.
//! What the answer means for the trunk's health is `trunk_choice`'s call.

use rsipstack::sip::{Header, Method, Request, Uri};
use rsipstack::transaction::make_tag;
use rsipstack::transport::SipAddr;

use super::endpoint::Shared;
use super::{registration, uac_request, SipError};

/// Send one OPTIONS to `target`; its final status, `None` when nothing
/// answered (rsipstack reports Timer F as its own 408).
pub(super) async fn ping(shared: &Shared, target: &str) -> Result<Option<u16>, SipError> {
    let invalid = || SipError::Invalid {
        what: "target",
        value: target.to_owned(),
    };
    let (uri, transport) = uac_request::target_uri(target).ok_or_else(invalid)?;
    let public = shared
        .stack
        .public_addr(transport)
        .ok_or(SipError::NoTransport(transport))?;
    let endpoint = &shared.stack.dialogs.endpoint;
    let via = SipAddr {
        r#type: Some(transport.stack()),
        addr: public.into(),
    };
    let req = request(shared, uri.clone(), endpoint.get_via(Some(via), None)?)?;
    if super::endpoint::connect_first(shared, &uri, transport)
        .await
        .is_err()
    {
        return Ok(None);
    }
    let destination = uac_request::tls_destination(&uri, transport);
    let resp = registration::transact(endpoint, req, destination).await;
    Ok(resp.map(|r| r.status_code.code()))
}

fn request(
    shared: &Shared,
    uri: Uri,
    via: rsipstack::sip::typed::Via,
) -> Result<Request, SipError> {
    let domain = &shared.settings.domain;
    let me = format!("sip:siphon@{domain}");
    let me = Uri::try_from(me.as_str()).map_err(|_| SipError::Invalid {
        what: "domain",
        value: domain.clone(),
    })?;
    let from = rsipstack::sip::typed::From {
        display_name: None,
        uri: me,
        params: vec![rsipstack::sip::Param::Tag(make_tag())],
    };
    let to = rsipstack::sip::typed::To {
        display_name: None,
        uri: uri.clone(),
        params: vec![],
    };
    let call_id = format!("{:032x}@{domain}", rand::random::<u128>());
    let endpoint = &shared.stack.dialogs.endpoint;
    let mut req =
        endpoint.make_request(Method::Options, uri, via, from, to, 1, Some(call_id.into()));
    req.headers.push(Header::ContentLength(0u32.into()));
    Ok(req)
}
