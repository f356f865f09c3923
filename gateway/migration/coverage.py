"""Coverage areas of partner systems, and which one a UE's location falls in (TR 23.781 step 3).

TR 23.781 solution 2 lets the primary configuration management server choose the partner
system from the UE's location. An area is a circle (centre latitude/longitude in degrees
WGS 84 and a radius in km) or a polygon (its vertices as [latitude, longitude] pairs, in
order). Distances are great-circle (haversine) on a sphere of the mean Earth radius; a
polygon is tested by ray casting on latitude/longitude, which is right for areas of a
country's size away from the poles and the antimeridian, the use here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float

    def __post_init__(self) -> None:
        check_latitude(self.latitude, "latitude")
        check_longitude(self.longitude, "longitude")

    def __str__(self) -> str:
        return f"{self.latitude:g},{self.longitude:g}"


def check_latitude(value: float, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not -90.0 <= value <= 90.0:
        raise ValueError(f"{where} = {value!r} is not a latitude; use degrees from -90 to 90")
    return float(value)


def check_longitude(value: float, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not -180.0 <= value <= 180.0:
        raise ValueError(f"{where} = {value!r} is not a longitude; use degrees from -180 to 180")
    return float(value)


def distance_km(a: Location, b: Location) -> float:
    """Great-circle distance (haversine formula)."""
    phi1, phi2 = math.radians(a.latitude), math.radians(b.latitude)
    dphi, dlambda = phi2 - phi1, math.radians(b.longitude - a.longitude)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class Circle:
    centre: Location
    radius_km: float

    def contains(self, where: Location) -> bool:
        return distance_km(self.centre, where) <= self.radius_km

    def __str__(self) -> str:
        return f"circle {self.centre} r={self.radius_km:g} km"


@dataclass(frozen=True, slots=True)
class Polygon:
    vertices: tuple[Location, ...]

    def contains(self, where: Location) -> bool:
        """Ray casting (even-odd rule) on (longitude, latitude)."""
        inside = False
        x, y = where.longitude, where.latitude
        points = self.vertices
        for i, a in enumerate(points):
            b = points[i - 1]
            if (a.latitude > y) != (b.latitude > y):
                crossing = a.longitude + (y - a.latitude) * (b.longitude - a.longitude) / (b.latitude - a.latitude)
                if x < crossing:
                    inside = not inside
        return inside

    def __str__(self) -> str:
        return f"polygon of {len(self.vertices)} vertices"


Area = Circle | Polygon
