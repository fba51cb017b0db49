//! The hello function: an Azure Functions custom handler with EasyAuth-style defence in depth.
