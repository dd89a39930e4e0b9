"""Layer 4, teaching text: the Explain section, the glossary and the lesson files' model (no Streamlit)."""
