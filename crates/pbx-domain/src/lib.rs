//! CloudPBX domain types: ids, tenants, users, devices, numbers, trunks.
