"""Rate cards from YAML: every price checked against its meter and its currency."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from streams.domain.meters import Meter
from streams.domain.usage import VALUE_SCALE

from . import fields as f
from .currency import MINOR_UNITS, fits_currency, fits_places
from .prices import (
    DimensionPrice,
    DimensionRate,
    FlatPrice,
    GraduatedPrice,
    PackagePrice,
    Price,
    PriceModel,
    RateCard,
    Tier,
    UnitPrice,
    VolumePrice,
)
from .problems import Path, Report

COMMON_FIELDS = ("key", "meter", "model")
MODEL_FIELDS: dict[PriceModel, tuple[str, ...]] = {
    PriceModel.FLAT: ("amount",),
    PriceModel.PER_UNIT: ("unit_amount", "included"),
    PriceModel.GRADUATED: ("tiers", "included"),
    PriceModel.VOLUME: ("tiers", "included"),
    PriceModel.PACKAGE: ("package_size", "amount", "included"),
    PriceModel.DIMENSION: ("prices", "default_unit_amount", "included"),
}
_ANY_MODEL = tuple(dict.fromkeys(n for names in MODEL_FIELDS.values() for n in names))
TIER_FIELDS = ("up_to", "unit_amount", "flat_amount")


@dataclass(frozen=True)
class MeterRefs:
    """The meters a price may name: the valid ones, and every key declared at all.

    A meter that is declared but invalid already has its own problem; prices that
    name it are not reported again as naming an unknown meter.
    """

    valid: Mapping[str, Meter]
    declared: frozenset[str]


def parse_rate_card(
    r: Report, raw: Any, path: Path, meters: MeterRefs, currency: str | None
) -> RateCard:
    """The valid prices of a rate card; the invalid ones only leave problems."""
    prices: list[Price] = []
    seen: dict[str, Path] = {}
    for item_path, item in f.sequence(r, raw, path):
        before = len(r.problems)
        price = _price(r, item, item_path, meters, currency)
        if price is None:
            continue
        if price.key in seen:
            r.add(
                (*item_path, "key"),
                f"duplicate price {price.key!r} (also {r.where(seen[price.key])}); "
                "give one of them a distinct key",
            )
        seen.setdefault(price.key, item_path)
        if len(r.problems) == before:
            prices.append(price)
    return tuple(prices)


def _price(
    r: Report, raw: Any, path: Path, meters: MeterRefs, currency: str | None
) -> Price | None:
    if not isinstance(raw, dict):
        f.mapping(r, raw, path, COMMON_FIELDS)  # reports that it is not a mapping
        return None
    model = f.choice(r, raw.get("model"), (*path, "model"), PriceModel)
    # Fields are judged against the model's own, once the model is known.
    m = f.mapping(r, raw, path, COMMON_FIELDS + (MODEL_FIELDS[model] if model else _ANY_MODEL))
    if m is None or model is None:
        return None
    before = len(r.problems)
    meter_key = f.text(r, m.get("meter"), (*path, "meter"), required=model is not PriceModel.FLAT)
    if meter_key is not None and meter_key not in meters.declared:
        known = ", ".join(sorted(meters.declared)) or "none"
        r.add((*path, "meter"), f"unknown meter {meter_key!r}; declared meters: {known}")
    key = f.text(r, m.get("key"), (*path, "key"), required=False, pattern=f.KEY) or meter_key
    if key is None and meter_key is None and model is PriceModel.FLAT:
        r.add((*path, "key"), "required for a flat fee without a meter")
    meter = meters.valid.get(meter_key or "")
    price = _model_price(r, m, path, model, key or "", meter_key, meter, currency)
    included = f.decimal(r, m.get("included"), (*path, "included"), required=False)
    if included is not None and not fits_places(included, VALUE_SCALE):
        r.add((*path, "included"), f"{m['included']} is finer than a metered quantity (9 places)")
    if price is None or len(r.problems) > before:
        return None
    if included and not isinstance(price, FlatPrice):
        # Free units per billing period, taken off the quantity before pricing.
        price = replace(price, included=included)
    return price


def _model_price(
    r: Report,
    m: dict[str, Any],
    path: Path,
    model: PriceModel,
    key: str,
    meter_key: str | None,
    meter: Meter | None,
    currency: str | None,
) -> Price | None:
    meter_name = meter_key or ""
    if model is PriceModel.FLAT:
        amount = money(r, m.get("amount"), (*path, "amount"), currency)
        return None if amount is None else FlatPrice(key, amount, meter_key)
    if model is PriceModel.PER_UNIT:
        unit = f.decimal(r, m.get("unit_amount"), (*path, "unit_amount"))
        return None if unit is None else UnitPrice(key, meter_name, unit)
    if model in (PriceModel.GRADUATED, PriceModel.VOLUME):
        tiers = _tiers(r, m.get("tiers"), (*path, "tiers"), currency)
        kind = GraduatedPrice if model is PriceModel.GRADUATED else VolumePrice
        return None if tiers is None else kind(key, meter_name, tiers)
    if model is PriceModel.PACKAGE:
        size = f.decimal(r, m.get("package_size"), (*path, "package_size"), positive=True)
        amount = money(r, m.get("amount"), (*path, "amount"), currency)
        return (
            None if size is None or amount is None else PackagePrice(key, meter_name, size, amount)
        )
    return _dimension(r, m, path, key, meter_name, meter)


def money(
    r: Report, raw: Any, path: Path, currency: str | None, *, required: bool = True
) -> Decimal | None:
    """An amount invoiced as it stands, so no finer than the currency's minor unit."""
    amount = f.decimal(r, raw, path, required=required)
    if amount is not None and currency is not None and not fits_currency(amount, currency):
        places = MINOR_UNITS[currency]
        r.add(path, f"{raw} has more decimal places than {currency} allows ({places})")
        return None
    return amount


def _tiers(r: Report, raw: Any, path: Path, currency: str | None) -> tuple[Tier, ...] | None:
    items = f.sequence(r, raw, path)
    if not items:
        r.add(path, "required: a list of tiers, the last without up_to")
        return None
    before = len(r.problems)
    tiers: list[Tier] = []
    bound: tuple[Decimal, Path] | None = None
    for i, (tier_path, item) in enumerate(items):
        t = f.mapping(r, item, tier_path, TIER_FIELDS)
        if t is None:
            continue
        last = i == len(items) - 1
        up_path = (*tier_path, "up_to")
        up_to = f.decimal(r, t.get("up_to"), up_path, required=False, positive=True)
        if t.get("up_to") is None and not last:
            r.add(up_path, "only the last tier may be open-ended; give this one an up_to")
        elif t.get("up_to") is not None and last:
            r.add(up_path, "the last tier must be open-ended; leave up_to out")
        if up_to is not None and bound is not None and up_to <= bound[0]:
            r.add(up_path, f"tiers must ascend: {up_to} is not above {bound[0]} of the tier before")
        if up_to is not None:
            bound = (up_to, up_path)
        if t.get("unit_amount") is None and t.get("flat_amount") is None:
            r.add(tier_path, "needs unit_amount, flat_amount or both")
        unit = f.decimal(r, t.get("unit_amount"), (*tier_path, "unit_amount"), required=False)
        flat_path = (*tier_path, "flat_amount")
        flat = money(r, t.get("flat_amount"), flat_path, currency, required=False)
        tiers.append(Tier(up_to, unit or Decimal(0), flat or Decimal(0)))
    return tuple(tiers) if len(r.problems) == before else None


def _dimension(
    r: Report, m: dict[str, Any], path: Path, key: str, meter_key: str, meter: Meter | None
) -> DimensionPrice | None:
    entries = f.sequence(r, m.get("prices"), (*path, "prices"))
    if not entries:
        r.add((*path, "prices"), "required: a list of {when: {dimension: value}, unit_amount}")
        return None
    before = len(r.problems)
    first: tuple[frozenset[str], Path] | None = None
    parsed: list[tuple[dict[str, str], Decimal, Path]] = []
    for entry_path, entry in entries:
        e = f.mapping(r, entry, entry_path, ("when", "unit_amount"))
        if e is None:
            continue
        when = _when(r, e.get("when"), (*entry_path, "when"), meter)
        unit = f.decimal(r, e.get("unit_amount"), (*entry_path, "unit_amount"))
        if when is None or unit is None:
            continue
        if first is None:
            first = (frozenset(when), entry_path)
        elif frozenset(when) != first[0]:
            r.add(
                (*entry_path, "when"),
                f"names {', '.join(sorted(when))} but {r.where(first[1])} names "
                f"{', '.join(sorted(first[0]))}; every entry must name the same dimensions",
            )
            continue
        parsed.append((when, unit, entry_path))
    default = f.decimal(
        r, m.get("default_unit_amount"), (*path, "default_unit_amount"), required=False
    )
    if first is None or len(r.problems) > before:
        return None
    order = meter.group_by if meter else tuple(sorted(first[0]))
    dimensions = tuple(d for d in order if d in first[0])
    rates: dict[tuple[str, ...], Path] = {}
    for when, _, entry_path in parsed:
        values = tuple(when[d] for d in dimensions)
        if values in rates:
            r.add((*entry_path, "when"), f"duplicate combination (also {r.where(rates[values])})")
        rates.setdefault(values, entry_path)
    if len(r.problems) > before:
        return None
    found = tuple(DimensionRate(tuple(w[d] for d in dimensions), u) for w, u, _ in parsed)
    return DimensionPrice(key, meter_key, dimensions, found, default)


def _when(r: Report, raw: Any, path: Path, meter: Meter | None) -> dict[str, str] | None:
    if not isinstance(raw, dict) or not raw:
        r.add(path, "required: a mapping of group-by dimension to value, e.g. {model: gpt-4o}")
        return None
    before = len(r.problems)
    out: dict[str, str] = {}
    for name, value in raw.items():
        if meter is not None and name not in meter.group_by:
            groups = ", ".join(meter.group_by) or "nothing"
            r.add(
                (*path, name),
                f"{name!r} is not a group-by dimension of meter {meter.key!r} (it groups by {groups})",
            )
        v = f.text(r, value, (*path, name))
        if v is not None:
            out[name] = v
    return out if len(r.problems) == before else None
