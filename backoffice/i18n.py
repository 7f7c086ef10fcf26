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
    "Figures will appear here.": "Les chiffres apparaîtront ici.",
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
