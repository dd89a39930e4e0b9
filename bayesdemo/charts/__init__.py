"""Layer 4, charts: pure Plotly figure builders, their styles and their text alternatives (no Streamlit)."""
