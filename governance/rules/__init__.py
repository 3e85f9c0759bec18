"""The rules that decide: licences as found read into SPDX expressions (licences, aliases) and
policies as code (policy, with the text each build was judged by in policy_texts).
"""
