"""Fair-PP Explorer: the router. Page config, navigation over ``pages/``, the shared frame around each page.

Run with ``streamlit run app.py``; the database is ``FAIRPP_DB`` (default ``data/fairpp.duckdb``). The page
list lives in ``fairpp/ui/nav.py``; the frame (data source, synthetic banner, global filters) in
``fairpp/ui/frame.py``.
"""
from fairpp import ui

ui.configure_page()
ui.data.ensure_data()
page, spec = ui.navigation()
with ui.frame(spec.key):
    page.run()
