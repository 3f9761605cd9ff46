"""The domain's words, once: roles and their order, tiers, asset statuses and visibility, with the labels people
read. The store, the map layers, the register importer, the CLI's choices and the web pages all import them from
here, so a new word is added in one place.

Not here: who may see what (``asset_map.privacy`` and the role checks it uses), and the consent answers a register
may give (the importer's consent rule). Nothing here imports Flask or the database.
"""

# Roles, lowest first: a role may do everything the roles before it may. "public" is everybody without an account.
ROLES = ("public", "organiser", "councillor", "officer", "admin")
# Accounts exist for the roles above the public.
ACCOUNT_ROLES = ROLES[1:]
ROLE_LABELS = {"public": "Public", "organiser": "Organiser", "councillor": "Councillor", "officer": "Officer",
               "admin": "Admin"}


def role_rank(role):
    """The role's place in ROLES (0 = public); a ValueError for a word that is not a role."""
    return ROLES.index(role)


# ABCD's three levels of assets, in the order people list them.
TIERS = ("individual", "association", "organisation")
TIER_LABELS = {"organisation": "Organisations", "association": "Associations and networks",
               "individual": "Individuals"}

# What a register may say of an asset; "withdrawn" is the store's own word for an asset gone from its register.
STATUSES = ("open", "temporarily closed", "closed")
WITHDRAWN = "withdrawn"
STORED_STATUSES = (*STATUSES, WITHDRAWN)
# Closed (and withdrawn) assets are hidden unless asked for.
DEFAULT_STATUSES = ("open", "temporarily closed")
STATUS_LABELS = {"open": "Open", "temporarily closed": "Temporarily closed", "closed": "Closed",
                 "withdrawn": "Withdrawn"}

# Who an asset record is for: restricted assets are seen by officers and above only.
VISIBILITIES = ("public", "restricted")
VISIBILITY_LABELS = {"public": "Public", "restricted": "Restricted (officers only)"}


def tier_label(tier):
    return TIER_LABELS.get(tier, str(tier or ""))


def status_label(status):
    return STATUS_LABELS.get(status, str(status or ""))
