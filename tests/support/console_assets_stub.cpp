// A stand-in for the console's embedded files (server/console_assets.h) when the build has no
// govmesh_console_assets target: no page, every asset path 404. The JSON API is unaffected.
#include "server/console_assets.h"

namespace govmesh::server {

const ConsoleAsset* findConsoleAsset(std::string_view) { return nullptr; }

}  // namespace govmesh::server
