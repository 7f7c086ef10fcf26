"""French for the retailers' pages (onboarding, profile, feed uploads), kept apart from the other pages' strings."""

from __future__ import annotations

RETAILER_FRENCH: dict[str, str] = {
    "Retailers": "Enseignes",
    "My shop": "Mon enseigne",
    "Feeds": "Flux",
    "Retailer id": "Identifiant de l'enseigne",
    "Retailer {id}": "Enseigne {id}",
    "Name": "Nom",
    "Last feed": "Dernier flux",
    "No retailer yet.": "Aucune enseigne pour l'instant.",
    "Invite a retailer": "Inviter une enseigne",
    "Invite": "Inviter",
    "Invitations": "Invitations",
    "Invitation link": "Lien d'invitation",
    "No invitation yet.": "Aucune invitation pour l'instant.",
    "Send this link to the retailer now: it will not be shown again.":
        "Envoyez ce lien à l'enseigne maintenant : il ne sera plus affiché.",
    "It works once, for {hours} hours.": "Il sert une fois, pendant {hours} heures.",
    "pending": "en attente",
    "used": "utilisée",
    "Invitation not valid": "Invitation non valable",
    "This invitation link has expired or was already used. Ask your nearcart contact for a new one.":
        "Ce lien d'invitation a expiré ou a déjà servi. Demandez-en un nouveau à votre contact nearcart.",
    "Join nearcart": "Rejoindre nearcart",
    "You were invited to feed nearcart as retailer {id}. Choose your password to open your account.":
        "Vous êtes invité·e à alimenter nearcart en tant qu'enseigne {id}. Choisissez votre mot de passe pour"
        " ouvrir votre compte.",
    "Password again": "Mot de passe (à nouveau)",
    "Open my account": "Ouvrir mon compte",
    "The two passwords differ.": "Les deux mots de passe diffèrent.",
    "Welcome! Fill in your profile: your name, logo and basket-link template.":
        "Bienvenue ! Complétez votre profil : votre nom, votre logo et le modèle de lien vers votre panier.",
    "Your profile is not saved yet: shoppers do not see you until it is.":
        "Votre profil n'est pas encore enregistré : les acheteurs ne vous voient pas tant qu'il ne l'est pas.",
    "Profile": "Profil",
    "Profile saved.": "Profil enregistré.",
    "Nothing was saved.": "Rien n'a été enregistré.",
    "Logo URL (https)": "Adresse du logo (https)",
    "Basket-link template": "Modèle de lien vers le panier",
    "An https address of your site with {gtin} (and optionally {store_id} and {qty}) where the product, store and"
    " quantity go.":
        "Une adresse https de votre site avec {gtin} (et, si besoin, {store_id} et {qty}) à la place du produit, du"
        " magasin et de la quantité.",
    "Countries you deliver to (ISO codes, e.g. FR|BE)": "Pays où vous livrez (codes ISO, par ex. FR|BE)",
    "Check your basket link before saving it.": "Vérifiez votre lien vers le panier avant de l'enregistrer.",
    "Built for your offer of product {gtin}:": "Construit pour votre offre du produit {gtin} :",
    "You have no offer yet: built for the sample product {gtin}:":
        "Vous n'avez pas encore d'offre : construit pour le produit d'exemple {gtin} :",
    "Open it: it should put that product in your basket. If it does, confirm; if not, correct the template.":
        "Ouvrez-le : il doit mettre ce produit dans votre panier. Si c'est le cas, confirmez ; sinon, corrigez le"
        " modèle.",
    "Confirm and save": "Confirmer et enregistrer",
    "Check again": "Vérifier à nouveau",
    "Basket-link template history": "Historique du modèle de lien vers le panier",
    "No template saved yet.": "Aucun modèle enregistré pour l'instant.",
    "Changed at": "Modifié le",
    "Changed by": "Modifié par",
    "Before": "Avant",
    "After": "Après",
    "Feeds of {id}": "Flux de {id}",
    "Send a feed": "Envoyer un flux",
    "The file holds": "Le fichier contient",
    "stores": "magasins",
    "offers": "offres",
    "products": "produits",
    "File (CSV, TSV, XML or JSON Lines; gzip accepted; at most {mb} MB)":
        "Fichier (CSV, TSV, XML ou JSON Lines ; gzip accepté ; au plus {mb} Mo)",
    "Send": "Envoyer",
    "Upload progress": "Progression de l'envoi",
    "Sent. Reading the rows…": "Envoyé. Lecture des lignes…",
    "Choose what the file holds.": "Choisissez ce que contient le fichier.",
    "Choose a file to send.": "Choisissez un fichier à envoyer.",
    "File too large": "Fichier trop volumineux",
    "The file is larger than {mb} MB: gzip it or split it.":
        "Le fichier dépasse {mb} Mo : compressez-le (gzip) ou découpez-le.",
    "Not a file upload": "Ce n'est pas un envoi de fichier",
    "Send the feed with the form on the feeds page.": "Envoyez le flux avec le formulaire de la page des flux.",
    "Feed runs": "Chargements de flux",
    "A {kind} feed is loading.": "Un flux ({kind}) est en cours de chargement.",
    "No feed run yet.": "Aucun chargement pour l'instant.",
    "Started": "Début",
    "Feed": "Flux",
    "Rows read": "Lignes lues",
    "Loaded": "Chargées",
    "Unchanged": "Inchangées",
    "Rejected": "Rejetées",
    "Duration": "Durée",
    "Report": "Rapport",
    "Report of upload {id}": "Rapport de l'envoi {id}",
    "Sent by": "Envoyé par",
    "Received": "Reçu le",
    "bytes": "octets",
    "running": "en cours",
    "ok": "ok",
    "rejected rows": "lignes rejetées",
    "failed": "échec",
    "The file is loading in the background; this page refreshes until it is done.":
        "Le fichier se charge en arrière-plan ; cette page se rafraîchit jusqu'à la fin.",
    "Nothing was loaded:": "Rien n'a été chargé :",
    "Download the report (CSV)": "Télécharger le rapport (CSV)",
    "Rejected rows": "Lignes rejetées",
    "The first {shown} of {total} are listed.": "Les {shown} premières sur {total} sont listées.",
    "Line": "Ligne",
    "Field": "Champ",
    "Reason": "Motif",
    "interrupted": "interrompu",
    "This load stopped before its end (the server restarted). Send the file again: loading a feed twice changes"
    " nothing.":
        "Ce chargement s'est arrêté avant la fin (le serveur a redémarré). Renvoyez le fichier : charger deux fois"
        " le même flux ne change rien.",
}
