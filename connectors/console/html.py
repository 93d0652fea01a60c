"""The page shell and small HTML helpers: escaped by default, no template engine.

Everything rendered goes through :func:`escape` (or is markup built here from escaped
parts), so a customer name or catalog text can never inject markup. Times are written
as ``<time datetime=...>`` in UTC; a few lines of script show them in the viewer's time
zone (Intl), and without script the UTC text stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape

CSS = """
*{box-sizing:border-box}body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1a202c;
background:#f7fafc}header{background:#1a365d;color:#fff;padding:.6em 1em;display:flex;
flex-wrap:wrap;gap:.4em 1.2em;align-items:baseline}header a{color:#e2e8f0;text-decoration:none}
header strong{font-size:1.1em;margin-right:1em}main{padding:1em;max-width:1100px;margin:auto}
h1{font-size:1.35em;margin:.2em 0 .6em}h2{font-size:1.1em;margin:1.4em 0 .5em}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.93em}
th,td{padding:.35em .55em;border-bottom:1px solid #e2e8f0;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.scroll{overflow-x:auto}
figure.chart{margin:.5em 0;background:#fff;padding:.5em;border:1px solid #e2e8f0}
figure.chart svg{width:100%;height:auto}.charts{display:grid;gap:.6em;
grid-template-columns:repeat(auto-fill,minmax(min(100%,420px),1fr))}figcaption{font-size:.9em;color:#4a5568}
.legend .key{margin-left:.8em}.legend i{display:inline-block;width:.8em;height:.8em;
margin-right:.3em}form.filters{display:flex;flex-wrap:wrap;gap:.5em;margin-bottom:.8em}
input,select,textarea,button{font:inherit;padding:.3em .5em}textarea{width:100%;
min-height:12em;font-family:ui-monospace,monospace}.ok{color:#2f855a}.bad{color:#c53030}
.muted{color:#718096}pre.diff{background:#fff;padding:.6em;overflow-x:auto;font-size:.85em}
pre.diff span{display:block;min-height:1em}.add{background:#f0fff4}.del{background:#fff5f5}.cards{display:flex;flex-wrap:wrap;gap:.8em}
.card{background:#fff;border:1px solid #e2e8f0;padding:.6em .9em;min-width:10em}
@media (max-width:640px){main{padding:.5em}th,td{padding:.3em}}
"""

SCRIPT = """
for(const t of document.querySelectorAll('time[datetime]')){const d=new Date(
t.getAttribute('datetime'));if(!isNaN(d))t.textContent=new Intl.DateTimeFormat(undefined,
{dateStyle:'medium',timeStyle:'short'}).format(d)}
const f=document.getElementById('upload');if(f)f.addEventListener('change',()=>{
const r=new FileReader();r.onload=()=>{document.getElementById('candidate').value=r.result};
r.readAsText(f.files[0])});
"""


def e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def when(at: datetime | None) -> str:
    if at is None:
        return ""
    iso = at.isoformat().replace("+00:00", "Z")
    return f'<time datetime="{e(iso)}">{e(at.strftime("%Y-%m-%d %H:%M UTC"))}</time>'


def table(
    head: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = (), id_: str = ""
) -> str:
    """A table of already-rendered cells (escape text with :func:`e` first)."""
    ths = "".join(
        f'<th class="n">{e(h)}</th>' if i in numeric else f"<th>{e(h)}</th>"
        for i, h in enumerate(head)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    ident = f' id="{e(id_)}"' if id_ else ""
    return (
        f'<div class="scroll"><table{ident}><thead><tr>{ths}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def page(title: str, body: str, nav: Sequence[tuple[str, str]] = ()) -> str:
    links = "".join(f'<a href="{e(href)}">{e(text)}</a>' for href, text in nav)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(title)} · Railyard</title><style>{CSS}</style>"
        '<link rel="icon" href="data:,"></head>'
        f"<body><header><strong>Railyard</strong>{links}</header>"
        f"<main><h1>{e(title)}</h1>{body}</main><script>{SCRIPT}</script></body></html>"
    )
