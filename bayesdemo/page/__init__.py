"""Layer 5, the page: the only package that imports Streamlit (widgets, live charts, links, patches)."""
