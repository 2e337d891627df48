//! Choosing the existing record a caller is (docs/behaviour.md §4, rule 3).
//!
//! The writer gathers candidates for a whole batch (the importer's index and
//! SOQL over the forms a number may be stored in), reads each candidate's
//! live phone and e-mail, and hands them here. This module decides, for one
//! customer, which candidate wins: a phone match before an e-mail match;
//! within each, Contact before Lead before Account; within one object, the
//! most recently modified. Converted Leads never reach here (the SOQL leaves
//! them out).

use fa_messages::{LinkMethod, SObject, SalesforceId, SalesforceRef};
use fa_phone::E164;
use time::OffsetDateTime;

/// A live record that may be the caller, as Salesforce answered for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The record.
    pub record: SalesforceRef,
    /// Its `Phone`, normalised; `None` when empty or unreadable.
    pub phone: Option<E164>,
    /// Its `Email`, lower-cased; `None` when empty (Accounts have none).
    pub email: Option<String>,
    /// Its `SystemModstamp`: the most recent wins among equals.
    pub modified_at: OffsetDateTime,
    /// A Contact's Account, the Task's `WhatId`.
    pub account: Option<SalesforceId>,
}

/// Who the caller is, in the forms candidates are compared in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The caller's numbers in E.164.
    pub phones: Vec<E164>,
    /// The caller's e-mail, lower-cased.
    pub email: Option<String>,
}

/// The winning candidate for `who`, and how it matched; `None` when no
/// candidate shares a number or the e-mail.
pub fn choose<'a>(who: &Identity, candidates: &'a [Candidate]) -> Option<(&'a Candidate, LinkMethod)> {
    let by_phone = candidates.iter().filter(|c| c.phone.as_ref().is_some_and(|p| who.phones.contains(p)));
    if let Some(found) = best(by_phone) {
        return Some((found, LinkMethod::MatchedPhone));
    }
    let email = who.email.as_deref()?;
    let by_email = candidates.iter().filter(|c| c.email.as_deref() == Some(email));
    best(by_email).map(|found| (found, LinkMethod::MatchedEmail))
}

/// Contact before Lead before Account, then the most recently modified; the
/// id breaks a tie so the choice never depends on the order of answers.
fn best<'a>(matches: impl Iterator<Item = &'a Candidate>) -> Option<&'a Candidate> {
    matches.min_by(|a, b| {
        rank(a.record.object)
            .cmp(&rank(b.record.object))
            .then(b.modified_at.cmp(&a.modified_at))
            .then(a.record.id.as_str().cmp(b.record.id.as_str()))
    })
}

fn rank(object: SObject) -> usize {
    SObject::MATCH_ORDER.iter().position(|o| *o == object).unwrap_or(SObject::MATCH_ORDER.len())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn candidate(object: SObject, id: &str, phone: Option<&str>, email: Option<&str>, at: OffsetDateTime) -> Candidate {
        Candidate {
            record: SalesforceRef { object, id: SalesforceId::new(id).expect("id") },
            phone: phone.map(|p| E164::parse(p).expect("E.164")),
            email: email.map(str::to_owned),
            modified_at: at,
            account: None,
        }
    }

    fn check(who: Identity, candidates: &[Candidate], expected: Option<(&str, LinkMethod)>) {
        let got = choose(&who, candidates).map(|(c, how)| (c.record.id.as_str().to_owned(), how));
        assert_eq!(got, expected.map(|(id, how)| (id.to_owned(), how)), "{who:?}");
    }

    #[test]
    fn phone_before_email_contact_before_lead_before_account_newest_first() {
        let old = datetime!(2026-01-01 00:00 UTC);
        let new = datetime!(2026-06-01 00:00 UTC);
        let tokyo = Identity { phones: vec![E164::parse("+81312345678").expect("E.164")], email: None };
        let with_mail = Identity { email: Some("hanako@example.jp".to_owned()), ..tokyo.clone() };
        let lead = candidate(SObject::Lead, "00Q000000000001EAA", Some("+81312345678"), None, new);
        let contact = candidate(SObject::Contact, "003000000000001AAA", Some("+81312345678"), None, old);
        let account = candidate(SObject::Account, "001000000000001AAA", Some("+81312345678"), None, new);
        let newer_lead =
            candidate(SObject::Lead, "00Q000000000002EAA", Some("+81312345678"), None, datetime!(2026-07-01 00:00 UTC));
        let mail_contact = candidate(SObject::Contact, "003000000000009AAA", None, Some("hanako@example.jp"), new);
        let other = candidate(SObject::Contact, "003000000000005AAA", Some("+81312340000"), None, new);

        // Contact over Lead over Account, whatever is newer.
        check(
            tokyo.clone(),
            &[lead.clone(), contact.clone(), account.clone()],
            Some(("003000000000001AAA", LinkMethod::MatchedPhone)),
        );
        check(tokyo.clone(), &[account.clone(), lead.clone()], Some(("00Q000000000001EAA", LinkMethod::MatchedPhone)));
        check(tokyo.clone(), std::slice::from_ref(&account), Some(("001000000000001AAA", LinkMethod::MatchedPhone)));
        // Most recently modified among one object.
        check(
            tokyo.clone(),
            &[lead.clone(), newer_lead.clone()],
            Some(("00Q000000000002EAA", LinkMethod::MatchedPhone)),
        );
        // A phone match beats an e-mail match of a higher-ranked object.
        check(
            with_mail.clone(),
            &[mail_contact.clone(), lead.clone()],
            Some(("00Q000000000001EAA", LinkMethod::MatchedPhone)),
        );
        // E-mail when no number matches.
        check(
            with_mail.clone(),
            &[mail_contact.clone(), other.clone()],
            Some(("003000000000009AAA", LinkMethod::MatchedEmail)),
        );
        // Nothing shared.
        check(tokyo.clone(), &[other.clone(), mail_contact.clone()], None);
        check(Identity::default(), &[lead, contact, account], None);
    }
}
