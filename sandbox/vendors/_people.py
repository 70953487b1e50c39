"""The sample workforce every vendor stand-in shares, so one person appears in every system by the same email."""

PEOPLE = [
    # (given name, family name, title, department, manager index or None)
    ("Ava", "Chen", "Chief Executive Officer", "Executive", None),
    ("Marcus", "Okafor", "Chief Information Security Officer", "Security", 0),
    ("Priya", "Raman", "General Counsel", "Legal", 0),
    ("Liam", "Novak", "VP Communications", "Communications", 0),
    ("Sofia", "García", "VP Engineering", "Engineering", 0),
    ("Noah", "Fischer", "Head of IT Operations", "IT", 4),
    ("Emma", "Rossi", "Security Engineer", "Security", 1),
    ("Yuki", "Tanaka", "Site Reliability Engineer", "Engineering", 4),
    ("Omar", "Haddad", "Privacy Counsel", "Legal", 2),
    ("Chloé", "Dubois", "Press Officer", "Communications", 3),
    ("Daniel", "Kim", "Customer Support Lead", "Support", 0),
    ("Hannah", "Müller", "HR Business Partner", "People", 0),
    ("Lucas", "Silva", "Product Manager", "Product", 4),
    ("Grace", "O'Brien", "Chief Financial Officer", "Finance", 0),
    ("Mateo", "López", "Sales Director", "Sales", 0),
    ("Zara", "Ahmed", "Data Protection Officer", "Legal", 2),
    ("Ethan", "Walker", "Network Engineer", "IT", 5),
    ("Isabel", "Costa", "Marketing Director", "Marketing", 0),
    ("Jonas", "Berg", "Backend Engineer", "Engineering", 4),
    ("Amara", "Nwosu", "Incident Manager", "Engineering", 4),
]


def email_of(given: str, family: str) -> str:
    import unicodedata

    def ascii_lower(text: str) -> str:
        return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace("'", "")

    return f"{ascii_lower(given)}.{ascii_lower(family)}@acme.example"


def people() -> list[dict]:
    """The 20 sample people with emails and manager emails."""
    rows = []
    for index, (given, family, title, department, manager) in enumerate(PEOPLE):
        rows.append(
            {
                "index": index,
                "given_name": given,
                "family_name": family,
                "name": f"{given} {family}",
                "email": email_of(given, family),
                "title": title,
                "department": department,
                "manager_email": email_of(PEOPLE[manager][0], PEOPLE[manager][1]) if manager is not None else "",
            }
        )
    return rows
