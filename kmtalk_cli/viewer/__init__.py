"""The web viewer: a self-contained HTML page that plays a .glb with its speech (``kmtalk view``)."""

from .page import ViewerPage as ViewerPage
from .page import build_page as build_page
from .page import encode_audio as encode_audio
from .page import viewer_page as viewer_page
from .serve import PageServer as PageServer
from .serve import start_server as start_server
