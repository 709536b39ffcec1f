"""``BloomerangStore.seeded_constituent_ids`` counts exactly the Ids that seeding a store gives.

The world generator sets WeGive donors' ``bloomerang_id`` from this count instead of seeding a throwaway store;
if the store's id rule changes (a new record taken on create, a contact more) the count must change with it.
"""

from __future__ import annotations

from bloom_pipeline.sandbox.bloomerang.store import BloomerangStore
from bloom_pipeline.sandbox.data.world import generate_world


def test_counted_ids_are_the_seeded_stores() -> None:
    world = generate_world(donors=150, seed=9)
    store = BloomerangStore.from_world(world)
    seeded = list(store.constituents)[-len(world.bloomerang["constituents"]):]
    assert BloomerangStore.seeded_constituent_ids(world) == seeded


def test_counted_ids_follow_fields_without_ids_and_secondary_contacts() -> None:
    data = {
        "custom_fields": [{"Name": "No Id Yet", "ObjectType": "Constituent"}, {"Id": 901, "Name": "Known"}],
        "funds": [{"Name": "General"}], "campaigns": [], "appeals": [{"Name": "Spring"}],
        "constituents": [
            {"Type": "Individual", "FirstName": "A", "LastName": "One",
             "PrimaryEmail": {"Type": "Home", "Value": "a.one@example.org"},
             "SecondaryEmails": [{"Type": "Work", "Value": "a.work@example.org"}],
             "SecondaryPhones": [{"Type": "Mobile", "Number": "555-0100"}]},
            {"Type": "Organization", "FullName": "Two Inc"},
            {"Type": "Individual", "FirstName": "C", "LastName": "Three",
             "PrimaryAddress": {"Type": "Home", "Street": "1 Main St", "City": "Springfield", "Country": "US"}},
        ],
    }
    store = BloomerangStore.from_world(data)
    assert BloomerangStore.seeded_constituent_ids(data) == list(store.constituents)
    assert len(store.emails) == 2 and len(store.phones) == 1 and len(store.addresses) == 1
