"""French and English for the back office: English strings are the keys, French their translation.

The language is `?lang=` when given (then remembered in the session), else the
session's, else the browser's `Accept-Language`, else English.
"""

from __future__ import annotations

from collections.abc import Callable

from backoffice.i18n_retailers import RETAILER_FRENCH

LANGS = ("en", "fr")
DEFAULT_LANG = "en"

FRENCH: dict[str, str] = {
    "nearcart back office": "Back-office nearcart",
    "Skip to content": "Aller au contenu",
    "Dashboard": "Tableau de bord",
    "API tokens": "Jetons d'API",
    "Log out": "Se déconnecter",
    "Signed in as": "Connecté·e en tant que",
    "Language": "Langue",
    "Sign in": "Se connecter",
    "Email": "E-mail",
    "Password": "Mot de passe",
    "Wrong email or password.": "E-mail ou mot de passe incorrect.",
    "Too many failed attempts. Try again in {minutes} min.":
        "Trop de tentatives échouées. Réessayez dans {minutes} min.",
    "This form has expired. Please try again.": "Ce formulaire a expiré. Veuillez réessayer.",
    "Your session has ended. Please sign in again.": "Votre session a pris fin. Veuillez vous reconnecter.",
    "Log out of the back office?": "Se déconnecter du back-office ?",
    "Campaigns": "Campagnes",
    "Campaign": "Campagne",
    "Brand": "Marque",
    "Last saved": "Dernier enregistrement",
    "No campaign yet.": "Aucune campagne pour l'instant.",
    "Your role has no campaigns.": "Votre rôle ne donne accès à aucune campagne.",
    "Figures": "Chiffres",
    "Filters": "Filtres",
    "All campaigns": "Toutes les campagnes",
    "Product": "Produit",
    "All products": "Tous les produits",
    "Retailer": "Enseigne",
    "All retailers": "Toutes les enseignes",
    "Mode": "Mode",
    "All modes": "Tous les modes",
    "Region": "Région",
    "French département (FR-75) or country (BE); empty: all":
        "Département français (FR-75) ou pays (BE) ; vide : toutes",
    "Show": "Afficher",
    "Reset": "Réinitialiser",
    "Download CSV": "Télécharger en CSV",
    "Figures from {since} to {to}": "Chiffres du {since} au {to}",
    "Totals": "Totaux",
    "Widget loads": "Chargements du widget",
    "Opens": "Ouvertures",
    "Searches": "Recherches",
    "Searches with offers": "Recherches avec offres",
    "Searches without offers": "Recherches sans offre",
    "Offers shown": "Offres affichées",
    "Clicks": "Clics",
    "Click-through rate": "Taux de clic",
    "Purchase-intent value": "Valeur d'intention d'achat",
    "Day": "Jour",
    "By day": "Par jour",
    "By product": "Par produit",
    "By retailer": "Par enseigne",
    "By mode": "Par mode",
    "By region": "Par région",
    "Nothing counted for this period and these filters.": "Rien de compté pour cette période et ces filtres.",
    "Loads, opens and searches happen before a retailer or mode is chosen: clear those filters to see them.":
        "Chargements, ouvertures et recherches ont lieu avant le choix d'une enseigne ou d'un mode : "
        "retirez ces filtres pour les voir.",
    "Daily chart of the figures below (the table By day holds the same numbers)":
        "Graphique quotidien des chiffres ci-dessous (le tableau Par jour contient les mêmes nombres)",
    "In store": "En magasin",
    "Click & collect": "Retrait en magasin",
    "Delivery": "Livraison",
    "Your role sees the figures of retailer {retailer} only.":
        "Votre rôle ne voit que les chiffres de l'enseigne {retailer}.",
    "Edit campaign {id}": "Modifier la campagne {id}",
    "Campaign JSON": "JSON de la campagne",
    "Save": "Enregistrer",
    "Format": "Mettre en forme",
    "Nothing was saved: {count} error(s).": "Rien n'a été enregistré : {count} erreur(s).",
    "line {line}": "ligne {line}",
    "Version {version} saved.": "Version {version} enregistrée.",
    "Version {version} restored as version {new}.": "Version {version} restaurée en version {new}.",
    "No change: nothing was saved.": "Aucun changement : rien n'a été enregistré.",
    "History": "Historique",
    "No version kept yet: the first save keeps the current JSON as version 1.":
        "Aucune version conservée : le premier enregistrement garde le JSON actuel comme version 1.",
    "Version": "Version",
    "Saved by": "Enregistrée par",
    "Saved at": "Enregistrée le",
    "outside the back office": "hors du back-office",
    "restored from version {version}": "restaurée depuis la version {version}",
    "Restore": "Restaurer",
    "Compare": "Comparer",
    "Compare versions": "Comparer des versions",
    "From": "De",
    "To": "À",
    "Show differences": "Voir les différences",
    "Differences between version {a} and version {b}": "Différences entre la version {a} et la version {b}",
    "The two versions are identical.": "Les deux versions sont identiques.",
    "Back to the campaign": "Retour à la campagne",
    "No such version.": "Version introuvable.",
    "Not found": "Introuvable",
    "There is nothing here, or nothing you may see.": "Il n'y a rien ici, ou rien que vous puissiez voir.",
    "Forbidden": "Refusé",
    "Service unavailable": "Service indisponible",
    "The back office cannot reach its database right now. Please retry shortly.":
        "Le back-office ne peut pas joindre sa base de données pour l'instant. Réessayez dans un moment.",
    "Mint a token": "Créer un jeton",
    "Role": "Rôle",
    "Label": "Libellé",
    "Valid for (days)": "Valable (jours)",
    "Mint": "Créer",
    "Copy this token now: it will not be shown again.":
        "Copiez ce jeton maintenant : il ne sera plus affiché.",
    "Token {label} revoked.": "Jeton {label} révoqué.",
    "Created by": "Créé par",
    "Created": "Créé le",
    "Expires": "Expire le",
    "Status": "État",
    "active": "actif",
    "revoked": "révoqué",
    "expired": "expiré",
    "Revoke": "Révoquer",
    "No token yet.": "Aucun jeton pour l'instant.",
    "Please correct the form:": "Veuillez corriger le formulaire :",
    "label must have 1 to 100 printable characters": "le libellé doit avoir de 1 à 100 caractères imprimables",
    "days must be a whole number from 1 to 365": "la durée doit être un nombre entier de 1 à 365",
    "Data quality": "Qualité des données",
    "As the last quality check found it. Worst first: a value beyond what pages an operator is marked.":
        "Telle que l'a trouvée le dernier contrôle. Les pires d'abord : une valeur qui alerte l'exploitation"
        " est signalée.",
    "Your choice is saved: it applies at the next quality check.":
        "Votre choix est enregistré : il s'applique au prochain contrôle de qualité.",
    "No retailer yet.": "Aucune enseigne pour l'instant.",
    "Data quality per retailer": "Qualité des données par enseigne",
    "Faults": "Défauts",
    "Feeds: age, rejected rows (trend)": "Flux : âge, lignes rejetées (tendance)",
    "Unconfirmed offers": "Offres non confirmées",
    "Price outliers": "Prix aberrants",
    "Basket links failing": "Liens panier en échec",
    "Approximate stores": "Magasins placés approximativement",
    "Checked": "Contrôlé le",
    "no feed yet": "aucun flux pour l'instant",
    "never": "jamais",
    "Basket links that failed": "Liens panier en échec",
    "None in the last sample.": "Aucun dans le dernier échantillon.",
    "Offers not confirmed for {hours} h": "Offres non confirmées depuis {hours} h",
    "Shoppers see them": "Les acheteurs les voient",
    "shown as unconfirmed": "affichées comme non confirmées",
    "hidden until the feed confirms them": "masquées jusqu'à ce que le flux les confirme",
    "Check now": "Contrôler maintenant",
    "A check is running: reload this page in a minute.":
        "Un contrôle est en cours : rechargez cette page dans une minute.",
}
FRENCH.update(RETAILER_FRENCH)

Translate = Callable[..., str]


def translator(lang: str) -> Translate:
    """`_("Version {version} saved.", version=3)`: the string in `lang`, placeholders filled."""
    table = FRENCH if lang == "fr" else {}

    def translate(text: str, **values: object) -> str:
        result = table.get(text, text)
        return result.format(**values) if values else result

    return translate


def from_accept_language(header: str) -> str | None:
    """The first of our languages the browser asks for, by its q-values; None when it asks for neither."""
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        lang = tag.strip().lower().split("-")[0]
        if lang in LANGS and quality > 0 and (best is None or (quality, -position) > (best[0], best[1])):
            best = (quality, -position, lang)
    return best[2] if best else None


def pick_lang(asked: str | None, remembered: str | None, accept_language: str) -> str:
    for lang in (asked, remembered):
        if lang in LANGS:
            return lang
    return from_accept_language(accept_language) or DEFAULT_LANG


def format_count(value: int, lang: str) -> str:
    """1,234 in English, 1 234 (narrow no-break space) in French."""
    text = f"{value:,}"
    return text.replace(",", "\u202f") if lang == "fr" else text


def format_rate(rate: float | None, lang: str) -> str:
    """A click-through rate as a percentage to two decimals (the CSV's four decimals of a fraction); — without opens."""
    if rate is None:
        return "—"
    text = f"{rate * 100:.2f}"
    return text.replace(".", ",") + "\u202f%" if lang == "fr" else text + "%"


def format_money(amounts: dict[str, str], lang: str) -> str:
    """{"EUR": "1234.50"} as 1,234.50 EUR (1 234,50 EUR in French); several currencies one after another."""
    if not amounts:
        return "0,00" if lang == "fr" else "0.00"
    shown = []
    for currency, amount in amounts.items():
        units, _, cents = amount.partition(".")
        sign = "-" if units.startswith("-") else ""
        whole = format_count(int(units.lstrip("-") or 0), lang)
        shown.append(f"{sign}{whole}{',' if lang == 'fr' else '.'}{cents or '00'}\u00a0{currency}")
    return " · ".join(shown)
