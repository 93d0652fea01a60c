"""Where the e-invoice validation material is: UBL 2.1 schemas, EN 16931 rules, SchXslt2.

Third-party files, never copied into this repository (``shared/einvoice/SOURCES.md``
lists them with their licences). Found through ``RAILYARD_EINVOICE``, then
``shared/einvoice`` beside the repository, then a one-time download of each file
from its official source into ``~/.cache/railyard/einvoice``, kept only when its
SHA-256 is the one pinned here (:mod:`connectors.shared_files`).

A download is pinned by content, not by URL alone: the EN 16931 rules are fetched
from Peppol's published copy and a changed upstream file is refused, not used.
"""

from __future__ import annotations

from pathlib import Path

from connectors.shared_files import REPO_ROOT, Pinned, SharedFolder

FOLDER = SharedFolder("einvoice", "RAILYARD_EINVOICE", "e-invoice file")
OASIS_UBL = "https://docs.oasis-open.org/ubl/os-UBL-2.1"
EN16931_UBL = (
    "https://raw.githubusercontent.com/OpenPEPPOL/peppol-bis-invoice-3/master/rules/sch/"
    "CEN-EN16931-UBL.sch"
)
SCHXSLT2 = (
    "https://raw.githubusercontent.com/schxslt/schxslt2/"
    "446f8b70c723f82fc44f348817287cd6c45f72f8/src/main/resources/content/transpile.xsl"
)
UBL_XSD: dict[str, str] = {
    "xsd/common/CCTS_CCT_SchemaModule-2.1.xsd": "dd546e4809df86b6445589f69f0d6c9df162840ae386574ddfc1da7638103e15",
    "xsd/common/UBL-CommonAggregateComponents-2.1.xsd": "939172ad8dd057cd403e7f763f6532184dd5ed4b9de24c42ebb35db4792ba613",
    "xsd/common/UBL-CommonBasicComponents-2.1.xsd": "bd4ad043ee1d9da1c7f8018dabf739cfafdfb59143d0d16b9ef769e6b7c408a7",
    "xsd/common/UBL-CommonExtensionComponents-2.1.xsd": "ad7a4e490978adfbcfc5ec0bb20941cf11ac960ccf0c4de8791a7c731a8dbe87",
    "xsd/common/UBL-CommonSignatureComponents-2.1.xsd": "3db472305f029bba5c1ae157bfd0178f715c3f9b94bd8e6c557dbce5e88da874",
    "xsd/common/UBL-CoreComponentParameters-2.1.xsd": "8be3379dbdcbcc7802fafdd16bac72c48fff1c0bb364213a31a17911dd06100b",
    "xsd/common/UBL-ExtensionContentDataType-2.1.xsd": "fcee77a11870208e6377ea6311b9f2a050bca24bdad8606ea02d71e9f9e72f8d",
    "xsd/common/UBL-QualifiedDataTypes-2.1.xsd": "7dcb156e610239c97ae70940cf4653b88e48c3595bf5f56a2204a32e2893e6cf",
    "xsd/common/UBL-SignatureAggregateComponents-2.1.xsd": "17bb6b62d709b4fd81449a37655af36aa6a1276ad4fdb1b2e249a5ed4b7c2172",
    "xsd/common/UBL-SignatureBasicComponents-2.1.xsd": "cef924d7ba3d1d8ade14469325cde1364f8c174e46f0198ec02da8e9e748a489",
    "xsd/common/UBL-UnqualifiedDataTypes-2.1.xsd": "09052d406b4293e2a5f9c2bfee6df10ad4d8d5f0b36e24a6349d7f7936d89eb6",
    "xsd/common/UBL-XAdESv132-2.1.xsd": "a4f726bcf8cc3f7d9ffa4dab99e005535a8e8b60dced1e5d94578d2e05afa96e",
    "xsd/common/UBL-XAdESv141-2.1.xsd": "1fa4625e9cefcb7a9abb5ac1b64315547450031eece8a55bd584e4ba4b79dbc1",
    "xsd/common/UBL-xmldsig-core-schema-2.1.xsd": "101909c9f06456d61ddcc4fb982f1d40dc357b439f393b1a2eb46e42acd60809",
    "xsd/maindoc/UBL-CreditNote-2.1.xsd": "a54651b1225052f811bf2ba01346f13f2454e7cc3e0be290c91dd680dc7b7b1a",
    "xsd/maindoc/UBL-Invoice-2.1.xsd": "40fae8cb436f3a9506d7acce65ba162caef3b0bed4d5cbc0992b2153ded4edf4",
}
PUBLISHED: dict[str, Pinned] = {
    **{f"ubl-2.1/{path}": Pinned(f"{OASIS_UBL}/{path}", sha) for path, sha in UBL_XSD.items()},
    "en16931/CEN-EN16931-UBL.sch": Pinned(
        EN16931_UBL, "3c4d9d9161eca5f0a7e02d8a83975a90838439364d7c34007e8e4a32f342be1e"
    ),
    "schxslt2/transpile.xsl": Pinned(
        SCHXSLT2, "9ea0537116571ccfe7d5cb13c94b7138200a815ae6525c14c21c3977f23f7607"
    ),
}
"""Every file validation reads, by its path under ``shared/einvoice``."""
INVOICE_XSD = "ubl-2.1/xsd/maindoc/UBL-Invoice-2.1.xsd"
CREDIT_NOTE_XSD = "ubl-2.1/xsd/maindoc/UBL-CreditNote-2.1.xsd"
EN16931_SCH = "en16931/CEN-EN16931-UBL.sch"
TRANSPILE_XSL = "schxslt2/transpile.xsl"


def einvoice_file(name: str, *, repo_root: Path = REPO_ROOT) -> Path:
    """The local path of ``name``; SharedFileNotFound, saying what was tried, when none.

    Asking for a UBL main schema makes sure every schema it imports is beside it.
    """
    found = FOLDER.file(name, PUBLISHED.get(name), repo_root=repo_root)
    if name in (INVOICE_XSD, CREDIT_NOTE_XSD):
        for other in UBL_XSD:
            FOLDER.file(f"ubl-2.1/{other}", PUBLISHED[f"ubl-2.1/{other}"], repo_root=repo_root)
    return found
