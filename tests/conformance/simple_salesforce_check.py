"""Drives sfsim with simple-salesforce (a client nobody on this team wrote):
JWT bearer login, query_all over the seeded Leads, a create, a collection
create and an error. Prints one JSON line of what it saw; exits non-zero on
the first surprise.

Usage: python simple_salesforce_check.py CREDENTIALS.json
CREDENTIALS: {"sfsim_url", "username", "consumer_key", "private_key", "expected_leads"}
"""
import json
import sys
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

creds = json.load(open(sys.argv[1], encoding="utf-8"))
sfsim = urlsplit(creds["sfsim_url"])


class ToSfsim(HTTPAdapter):
    """Stands in for DNS and TLS only: simple-salesforce always calls
    https://login.salesforce.com and https://<instance>; send those requests
    to sfsim over plain HTTP, unchanged otherwise."""

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        request.url = urlunsplit((sfsim.scheme, sfsim.netloc, parts.path, parts.query, parts.fragment))
        return super().send(request, **kwargs)


session = requests.Session()
session.mount("https://", ToSfsim())

sf = Salesforce(
    username=creds["username"],
    consumer_key=creds["consumer_key"],
    privatekey=creds["private_key"],
    domain="login",
    session=session,
    version="61.0",
)

seen = {}

result = sf.query_all("SELECT Id, FirstName, LastName, Phone, SystemModstamp FROM Lead ORDER BY SystemModstamp, Id")
records = result["records"]
assert result["totalSize"] == creds["expected_leads"], result["totalSize"]
assert len(records) == creds["expected_leads"], len(records)
assert len({r["Id"] for r in records}) == len(records), "duplicate ids across pages"
assert all(r["attributes"]["type"] == "Lead" for r in records)
seen["query_all"] = len(records)

created = sf.Contact.create({"LastName": "佐藤", "FirstName": "花子", "Phone": "03-1234-5678"})
assert created["success"] is True and created["id"].startswith("003"), created
fetched = sf.Contact.get(created["id"])
assert fetched["Name"] == "佐藤 花子", fetched["Name"]
seen["create"] = created["id"]

collection = sf.restful(
    "composite/sobjects",
    method="POST",
    data=json.dumps(
        {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "Name": "株式会社サンプル商事"},
                {"attributes": {"type": "Contact"}, "FirstName": "名無し"},
            ],
        }
    ),
)
assert collection[0]["success"] is True, collection
assert collection[1]["success"] is False and collection[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING", collection
seen["collection"] = [item["success"] for item in collection]

try:
    sf.query("SELEKT Id FROM Lead")
    raise AssertionError("a malformed query was accepted")
except SalesforceMalformedRequest as error:
    assert error.status == 400, error.status
    assert error.content[0]["errorCode"] == "MALFORMED_QUERY", error.content
    seen["error"] = error.content[0]["errorCode"]

print(json.dumps(seen, ensure_ascii=False))
