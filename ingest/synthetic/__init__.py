"""The synthetic population: realistic people on real English neighbourhoods, never real data."""
