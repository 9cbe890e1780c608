"""`corrode scrape`: image search results (or URL lists, or web pages) -> a clean, traceable folder.

Library use: `scrape(ScrapeConfig(queries=("rusty car",), engine="bing", out=Path("data/raw")))`.
"""

from corrode.scrape.run import QuerySummary, ScrapeConfig, ScrapeSummary, scrape

__all__ = ["QuerySummary", "ScrapeConfig", "ScrapeSummary", "scrape"]
