"""Resend contacts as Pulumi resources (resend-iac dynamic providers).

    export RESEND_API_KEY=re_...        # read by the providers when they run; never stored
    pulumi up

One resource per object for the few that matter, and a ContactList for a whole declared
file (contacts.yaml), planned and applied by the resend-iac diff engine.
"""

import pulumi

from resend_iac.pulumi import Contact, ContactList, ContactProperty, Segment, Topic

company = ContactProperty("company", key="company", type="string", fallback_value="n/a")
plan_tier = ContactProperty("plan-tier", key="plan_tier", type="number")

customers = Segment("customers", name="customers")

product_updates = Topic(
    "product-updates",
    name="product-updates",
    default_subscription="opt_in",
    description="Monthly product news",
    visibility="public",
)

PEOPLE = [
    # email, first name, last name, company, tier
    ("ada@example.com", "Ada", "Lovelace", "Analytical Engines", 3),
    ("grace@example.com", "Grace", "Hopper", "Navy", 2),
    ("alan@example.com", "Alan", "Turing", "Bletchley Park", 1),
]

contacts = [
    Contact(
        email.split("@")[0],
        email=email,
        first_name=first,
        last_name=last,
        properties={"company": org, "plan_tier": tier},
        segment_ids=[customers.id],
        # topics maps topic ids (known once the topic exists) to opt_in/opt_out.
        topics=product_updates.id.apply(lambda topic_id: {topic_id: "opt_in"}),
        # The property values need the properties to exist first.
        opts=pulumi.ResourceOptions(depends_on=[company, plan_tier]),
    )
    for email, first, last, org, tier in PEOPLE
]

newsletter = ContactList("newsletter", path="contacts.yaml")

pulumi.export("customers_segment_id", customers.id)
pulumi.export("contact_ids", [c.id for c in contacts])
pulumi.export("newsletter_plan", newsletter.plan_summary)
