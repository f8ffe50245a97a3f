"""Drives a real contactd through a client generated from the seed's OpenAPI document.

Run by .ci/seed-client, which generates the `alpharun_api_client` package from
.ci/seed-openapi.yaml with openapi-python-client and starts the server. Every response is
read into the generated client's typed models, and each model must hold what its type
hints promise (an attribute typed `str | Unset` holds a `str` or `UNSET`, never `None`);
every body must also validate against the seed's own schema. Any refusal exits non-zero
(docs/reference.md#seed-fidelity).

Usage: seed_client.py BASE_URL API_KEY SEED_OPENAPI_YAML
"""

import json
import sys
import types
import typing
import uuid

import attrs
import jsonschema
import yaml
from alpharun_api_client import AuthenticatedClient, models
from alpharun_api_client.api.default import get_contacts_id, patch_contacts, post_contacts
from alpharun_api_client.types import UNSET, Unset

base, key, seed_path = sys.argv[1:]
client = AuthenticatedClient(base_url=f"{base}/api/v1", token=key, raise_on_unexpected_status=True)
with open(seed_path) as seed_file:
    seed = yaml.safe_load(seed_file)
failures = []


def check_type(value, hint, path):
    """Fails when `value` is not what the type hint `hint` promises."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        if not any(fits(value, option) for option in typing.get_args(hint)):
            failures.append(f"{path}: {value!r} is not {hint}")
        for option in typing.get_args(hint):
            if fits(value, option):
                check_type(value, option, path)
                break
    elif typing.get_origin(hint) is list:
        if not isinstance(value, list):
            failures.append(f"{path}: {value!r} is not a list")
            return
        (item_hint,) = typing.get_args(hint)
        for index, item in enumerate(value):
            check_type(item, item_hint, f"{path}[{index}]")
    elif attrs.has(hint):
        check_model(value, path)
    elif not fits(value, hint):
        failures.append(f"{path}: {value!r} is not {hint}")


def fits(value, hint):
    """Whether `value` is of the one type `hint` names (a float may be sent as an integer)."""
    if typing.get_origin(hint) is list:
        return isinstance(value, list)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is typing.Any:
        return True
    return isinstance(value, hint)


def check_model(model, path):
    """Fails on every attribute of a generated model that breaks its own type hint."""
    hints = typing.get_type_hints(type(model), localns={**vars(models), "Unset": Unset})
    for field in attrs.fields(type(model)):
        if field.name != "additional_properties":
            check_type(getattr(model, field.name), hints[field.name], f"{path}.{field.name}")


def check_body(response, schema_name, what):
    """Fails when the raw body breaks the seed's schema, read strictly."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": seed["components"]}
    for error in jsonschema.Draft4Validator(schema).iter_errors(json.loads(response.content)):
        failures.append(f"{what}: the body breaks the seed's {schema_name} at {error.json_path}: {error.message}")


def expect_contact(response, what):
    """The typed `ContactResponse` of a 200, checked; `None` when it is not one."""
    if response.status_code != 200:
        failures.append(f"{what}: status {response.status_code}: {response.content!r}")
        return None
    before = len(failures)
    check_body(response, "ContactResponse", what)
    contact = response.parsed
    if not isinstance(contact, models.ContactResponse):
        failures.append(f"{what}: not read as a ContactResponse: {contact!r}")
        return None
    check_model(contact, what)
    # Code that trusts a model which broke its types would crash: go no further with it.
    return contact if len(failures) == before else None


def expect_error(response, status, what):
    """The typed `Error` of a documented refusal, checked."""
    if response.status_code != status:
        failures.append(f"{what}: status {response.status_code}, not {status}: {response.content!r}")
        return
    check_body(response, "Error", what)
    error = response.parsed
    if not isinstance(error, models.Error):
        failures.append(f"{what}: not read as an Error: {error!r}")
        return
    check_model(error, what)
    if error.error != status or not error.message:
        failures.append(f"{what}: {error!r} does not repeat the status with a sentence")


def full_name(contact):
    """What an integration's own code builds from a contact: the names that are set."""
    names = [contact.first_name, contact.last_name]
    return " ".join(name for name in names if not isinstance(name, Unset))


run = uuid.uuid4().hex[:8]
email = f"ada-{run}@example.com"
ext_id = f"crm-{run}"
# A phone number as a float: what a Python integration holding it as a number sends.
created = expect_contact(
    post_contacts.sync_detailed(
        client=client,
        body=models.ContactCreatePayload(
            email=email,
            ext_id=ext_id,
            first_name="Ada",
            phone_number=14155552671.0,
            custom_fields=[models.ContactCreatePayloadCustomFieldsItem(key="plan", value="pro")],
        ),
    ),
    "create",
)
if created is not None:
    if created.last_name is not UNSET:
        failures.append(f"create: a contact with no last name answers {created.last_name!r}")
    if created.phone_number != "+14155552671":
        failures.append(f"create: the phone number is {created.phone_number!r}")
    if full_name(created) != "Ada":
        failures.append(f"create: the name built from the contact is {full_name(created)!r}")
    identifiers = [
        created.id,
        f"alt:ext_id:{ext_id}",
        f"alt:email:{email}",
        "alt:phone_number:+14155552671",
    ]
    for seats, identifier in enumerate(identifiers, start=1):
        fetched = expect_contact(
            get_contacts_id.sync_detailed(identifier, client=client), f"fetch {identifier}"
        )
        if fetched is not None and fetched.id != created.id:
            failures.append(f"fetch {identifier}: another contact, {fetched.id}")
        updated = expect_contact(
            patch_contacts.sync_detailed(
                client=client,
                body=models.ContactUpdateByIdentifierPayload(
                    id=identifier,
                    last_name=f"Lovelace {seats}",
                    custom_fields=models.ContactUpdateByIdentifierPayloadCustomFields(
                        set_=[
                            models.ContactUpdateByIdentifierPayloadCustomFieldsSetItem(
                                key="seats", value=str(seats)
                            )
                        ],
                    ),
                ),
            ),
            f"update {identifier}",
        )
        if updated is not None:
            values = {field.key: field.value for field in updated.custom_fields}
            if values != {"plan": "pro", "seats": seats}:
                failures.append(f"update {identifier}: custom fields {values!r}")
            if full_name(updated) != f"Ada Lovelace {seats}":
                failures.append(f"update {identifier}: the name is {full_name(updated)!r}")
    removed = expect_contact(
        patch_contacts.sync_detailed(
            client=client,
            body=models.ContactUpdateByIdentifierPayload(
                id=created.id,
                custom_fields=models.ContactUpdateByIdentifierPayloadCustomFields(remove=["plan"]),
            ),
        ),
        "remove a custom field",
    )
    if removed is not None and [field.key for field in removed.custom_fields] != ["seats"]:
        failures.append(f"remove a custom field: {removed.custom_fields!r}")

    # The documented errors, each read as the seed's Error.
    expect_error(
        patch_contacts.sync_detailed(
            client=client,
            body=models.ContactUpdateByIdentifierPayload(id=created.id, phone_number="555-01"),
        ),
        400,
        "a malformed phone number",
    )
    expect_error(
        patch_contacts.sync_detailed(
            client=client,
            body=models.ContactUpdateByIdentifierPayload(
                id=created.id,
                custom_fields=models.ContactUpdateByIdentifierPayloadCustomFields(
                    set_=[
                        models.ContactUpdateByIdentifierPayloadCustomFieldsSetItem(
                            key="undefined", value="x"
                        )
                    ]
                ),
            ),
        ),
        400,
        "an undefined custom field",
    )
    expect_error(
        patch_contacts.sync_detailed(
            client=client,
            body=models.ContactUpdateByIdentifierPayload(id=f"alt:ext_id:missing-{run}"),
        ),
        404,
        "update of a contact that does not exist",
    )
    expect_error(
        get_contacts_id.sync_detailed(str(uuid.uuid4()), client=client),
        404,
        "fetch of a contact that does not exist",
    )
    expect_error(
        post_contacts.sync_detailed(client=client, body=models.ContactCreatePayload(email=email)),
        409,
        "a create with a taken email",
    )

# A contact with nothing but an email: every other member is omitted, not null.
bare = expect_contact(
    post_contacts.sync_detailed(
        client=client, body=models.ContactCreatePayload(email=f"bare-{run}@example.com")
    ),
    "create with an email only",
)
if bare is not None and full_name(bare) != "":
    failures.append(f"create with an email only: the name is {full_name(bare)!r}")

if failures:
    print("seed client: the generated client could not use contactd:", file=sys.stderr)
    for failure in failures:
        print(f"  {failure}", file=sys.stderr)
    sys.exit(1)
print("seed client: create, fetch and update by every identifier form, and the documented "
      "errors, all read into the seed's typed models")
